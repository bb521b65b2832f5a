"""Every read the web UI makes, shaped to stay cheap.

Cost model (DESIGN.md, "Services"; a real MongoDB is never slower with the same
shape): a query costs in proportion to the documents the chosen index yields, and
sort+limit does not stop early. So a page must ask only for a time slice that
holds about as many records as it shows, and each request has a scan budget:
once it is spent, the answer is partial (a page that ends early with a cursor,
a histogram with `complete: false`).

Imports point one way, top to bottom:

* `reader.LogReader`: the door, one per app (`get_reader()` in a view). The only
  module that imports pymongo: it opens the client, puts a deadline on every call
  and turns pymongo's errors into opslog's. It hands each read a `ReadHandle`.
* the reads, one module per concern, plain functions of a `ReadHandle`:
  `search` (a page of records, its slice chosen from the minute rollups, `rollups`),
  `context` (the lines around a record in its file), `histogram` (records per bucket
  and level, over 2 h from the hourly tables of `hour_tables`), `hosts` (hosts, apps,
  a host's records per day), `fields` (the consumer's field catalogue).
* their helpers: `logs` (filters as `$match`, documents as records), `budget` (the
  documents a request may still examine), `times` (the rollups' time grid).
* the leaves: `handle.ReadHandle` (the collections and the clock) and `filters`
  (`Filters`, `Cursor`: what a read is asked). Whatever turns a request into
  `Filters` (`webui.params`) sits above this package and is never imported by it.
* below them all, `plan`: the query language's tree (`common.query`) and the
  server's `Capabilities` -> a MongoDB filter and the indexes it may lead with.
  `logs.filter_match(flt)` is the one way to a `$match` for a `Filters`, `q` included.
"""

from webui.queries.filters import Cursor, Filters
from webui.queries.histogram import bucket_for
from webui.queries.reader import LogReader, QueryTimeout, get_reader, open_database

__all__ = ["Cursor", "Filters", "LogReader", "QueryTimeout", "bucket_for", "get_reader", "open_database"]
