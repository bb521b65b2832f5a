"""Alert rules (issue 16): count, ratio and silence rules over the stored records, evaluated by
`opslog alert`, delivered to webhooks and email, managed from the UI and `/api/alerts`.

Modules, each one concern (imports point down the list):

* `cli`: the `opslog alert` command (`opslog.commands` entry point).
* `evaluator`: the loop: the lease in MongoDB (one instance evaluates), each rule on its
  `every`, each evaluation in a worker thread under its own deadline, the sender thread.
* `views`: `/api/alerts`, `/api/silences` and the `/alerts` page (Flask blueprint).
* `notify`: webhook (JSON or Slack body) and email delivery, retried with backoff.
* `evaluate`: one rule's value: counts from the minute rollups or from `logs`, silence
  from records or heartbeats.
* `states`: the state machine `ok -> pending -> firing -> resolved`, a pure function of
  (rule, previous state, result, time, muted) into (new state, notice).
* `plan`: which part of a rule's query the rollups can answer.
* `store`: the one module here that imports pymongo: rules, states, history,
  deliveries, silences and the lease.
* `rules`: rules as documents and back; labels, fingerprints, silences matching.
"""
