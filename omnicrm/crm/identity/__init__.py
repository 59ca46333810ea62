"""Identity resolution: source customers joined into profiles, one per person, within
one shop (records of two shops are never one person).

- `normalize`: match keys and names, normalised; how a name is shown (`person_name`);
- `rules`: the ``[identity]`` settings (`IdentitySettings`);
- `resolver`: the clustering, in memory;
- `resolving`: against the store, incremental (`resolve_pending`) or whole (`resolve_all`);
- `overrides`: the operator's `link` and `unmerge`;
- `explanations`: why a profile is one person (`explain`, `recent_merges`);
- `suggestions`: pairs refused for one reason, and the operator's decision on one
  (`suggestions`, `decide`: link, separate or split); `nearmiss` says what a
  suggestion is.

docs/identity.md is the user's reference.
"""

from omnicrm.crm.identity.explanations import (
    Explanation,
    Member,
    Merge,
    Override,
    UnknownProfileError,
    describe,
    explain,
    recent_merges,
)
from omnicrm.crm.identity.overrides import (
    NothingToUnmergeError,
    OtherShopError,
    UnknownRecordError,
    link,
    separate,
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
from omnicrm.crm.identity.suggestions import (
    NothingToSplitError,
    PairSuggestion,
    UnknownSuggestionError,
    decide,
    suggestions,
)

__all__ = [
    "Explanation",
    "IdentitySettings",
    "Member",
    "Merge",
    "NothingToSplitError",
    "NothingToUnmergeError",
    "OtherShopError",
    "Override",
    "PairSuggestion",
    "Plan",
    "RecordRef",
    "ResolveResult",
    "UnknownProfileError",
    "UnknownRecordError",
    "UnknownSuggestionError",
    "apply",
    "decide",
    "describe",
    "explain",
    "link",
    "plan",
    "recent_merges",
    "resolve_all",
    "resolve_pending",
    "separate",
    "suggestions",
    "unmerge",
]
