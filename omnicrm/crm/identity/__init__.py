"""Identity resolution: source customers joined into profiles, one per person, within
one shop (records of two shops are never one person).

- `normalize`: match keys and names, normalised; how a name is shown (`person_name`);
- `rules`: the ``[identity]`` settings (`IdentitySettings`);
- `resolver`: the clustering, in memory;
- `resolving`: against the store, incremental (`resolve_pending`) or whole (`resolve_all`);
- `overrides`: the operator's `link` and `unmerge`;
- `explanations`: why a profile is one person (`explain`, `recent_merges`).

docs/identity.md is the user's reference.
"""

from omnicrm.crm.identity.explanations import (
    Explanation,
    Member,
    Merge,
    Override,
    UnknownProfileError,
    explain,
    recent_merges,
)
from omnicrm.crm.identity.overrides import (
    NothingToUnmergeError,
    OtherShopError,
    UnknownRecordError,
    link,
    unmerge,
)
from omnicrm.crm.identity.resolver import RecordRef
from omnicrm.crm.identity.resolving import (
    Plan,
    ResolveResult,
    apply,
    plan,
    resolve_all,
    resolve_pending,
)
from omnicrm.crm.identity.rules import IdentitySettings

__all__ = [
    "Explanation",
    "IdentitySettings",
    "Member",
    "Merge",
    "NothingToUnmergeError",
    "OtherShopError",
    "Override",
    "Plan",
    "RecordRef",
    "ResolveResult",
    "UnknownProfileError",
    "UnknownRecordError",
    "apply",
    "explain",
    "link",
    "plan",
    "recent_merges",
    "resolve_all",
    "resolve_pending",
    "unmerge",
]
