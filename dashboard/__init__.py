"""The ministry's live dashboard: one JSON snapshot of the reports and a page that polls it."""
