"""Every read the web UI makes, shaped to stay cheap.

Cost model (SecantusDB measured; a real MongoDB is never slower with the same
shape): a query costs about 20 us per document the chosen index yields, and
sort+limit does not stop early. So a page must ask only for a time slice that
holds about as many records as it shows, and each request has a scan budget:
once it is spent, the answer is partial (a page that ends early with a cursor,
a histogram with `complete: false`).

`store.Store` is the door (and the only module of `webui` that talks to pymongo);
each read lives in the module of its concern:

* `search`: a page of records, the slice chosen from the minute rollups (`rollups`);
* `context`: the lines around a record in its file;
* `histogram`: records per bucket and level, over 2 h from hourly tables (`hour_tables`);
* `hosts`: hosts, apps, and a host's records per day (also from `hour_tables`);
* `logs`: filters as `$match`, documents as records; `times`: the rollups' time grid;
  `budget`: the documents a request may still examine.
"""

from webui.queries.histogram import bucket_for
from webui.queries.store import QueryTimeout, Store, get_store, open_database

__all__ = ["QueryTimeout", "Store", "bucket_for", "get_store", "open_database"]
