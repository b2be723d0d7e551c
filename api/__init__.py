"""The 124 service API: Open311 GeoReport v2 intake and status, the bodies' work queue and actions
(``samt124 api``)."""
