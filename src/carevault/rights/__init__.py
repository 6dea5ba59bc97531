"""Rights requests as tracked cases: HIPAA access, amendment and accounting (the tenant
decides), CCPA know, access, delete and correct (the vendor decides). See service.py."""
