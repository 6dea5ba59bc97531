"""Every table, for migrations. Record tables are reached through here, so that
only the gate's package imports records/."""

from carevault.audit import evidence_models as _audit_evidence  # noqa: F401
from carevault.audit import models as _audit_models  # noqa: F401  (registers tables)
from carevault.database import metadata
from carevault.identity import account_models as _account_models  # noqa: F401
from carevault.identity import models as _identity_models  # noqa: F401
from carevault.identity import tenant_policy as _tenant_policy  # noqa: F401
from carevault.messaging import models as _messaging_models  # noqa: F401
from carevault.messaging import preferences as _preferences  # noqa: F401
from carevault.policy import versions as _policy_versions  # noqa: F401
from carevault.privacy import access_models as _access_models  # noqa: F401
from carevault.privacy import deid_models as _deid_models  # noqa: F401
from carevault.privacy import export_models as _export_models  # noqa: F401
from carevault.privacy import oversight_models as _oversight_models  # noqa: F401
from carevault.privacy import soft_delete as _soft_delete  # noqa: F401
from carevault.privacy.disclosure import ledger as _disclosure_ledger  # noqa: F401
from carevault.privacy.disclosure import models as _disclosure_models  # noqa: F401
from carevault.records import models as _record_models  # noqa: F401
from carevault.retention import models as _retention_models  # noqa: F401
from carevault.rights import models as _rights_models  # noqa: F401

__all__ = ["metadata"]
