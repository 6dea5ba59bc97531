"""Retention: deletion three ways, legal holds, the retention job, tenant offboarding.

The service API (for rights/ and the faces) is `retention.service.Retention`:
`delete_patient` (verified written request + the tenant's instruction → crypto-shred and a
signed certificate), `delete_own_submission`, `inactivate_account`, `soft` (hide / restore),
`holds` (file / lift); `retention.job.RetentionJob.run(tenant, dry_run=...)`; and
`retention.offboard.offboard`. See each module's docstring for what it does and keeps.
"""
