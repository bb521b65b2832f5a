"""What belongs to a person rather than to the logs: users kept in MongoDB and saved searches.

* `store.AccountStore`: the `users` and `searches` collections, the one module of
  webui that writes to MongoDB (besides the sign-out count `queries.reader` keeps).
  pymongo's errors become opslog's (`StoreUnavailable`) or this package's (`NameTaken`).
* `users`: the `opslog user add|passwd|role|remove|list` commands.
* `searches`: a saved search's body checked (`ParamError` naming the field) and shaped.

The views (`webui.auth` for sign-in and roles, `webui.saved` for `/api/searches`) sit
above this package; it imports nothing of theirs.
"""

from webui.accounts.store import AccountStore, NameTaken, get_accounts, open_accounts

__all__ = ["AccountStore", "NameTaken", "get_accounts", "open_accounts"]
