"""The field catalogue as the UI reads it: which parsed fields the records carry, per app.

The consumer keeps `field_catalogue` (`consumer.store.catalogue`): one document
per (app, dotted path under `fields`) with its types and record count. For one
app the answer is that app's paths; for all apps, the paths merged (counts and
types summed). Most frequent first, at most `limit`.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from webui.queries.handle import ReadHandle

MAX_READ = 20_000  # catalogue documents one request reads (the consumer keeps at most 1,000 per app)


def list_fields(db: ReadHandle, app: str | None, limit: int) -> list[dict[str, Any]]:
    if db.catalogue is None:
        return []
    query = {} if app is None else {"app": app}
    counts: Counter = Counter()
    types: dict[str, Counter] = {}
    docs = db.catalogue.find(query, {"_id": 0, "field": 1, "types": 1, "count": 1}).sort("count", -1)
    for doc in docs.limit(MAX_READ):
        name = doc.get("field")
        if not isinstance(name, str):
            continue
        counts[name] += int(doc.get("count") or 0)
        seen = types.setdefault(name, Counter())
        for kind, n in (doc.get("types") or {}).items():
            seen[kind] += int(n or 0)
    return [{"field": name, "types": dict(types[name].most_common()), "count": n}
            for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]
