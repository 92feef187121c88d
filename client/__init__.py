"""Dunning's side of the Temporal client (SPEC 3): the one place that knows workflow ids,
update ids, update-with-start and signal-with-start, and registers search attributes.

- ``client.connect``: connecting, registering the search attributes, ``registering`` (a
  start refused for an unregistered attribute registers them and tries again);
- ``client.customers``: every interaction with a customer's workflow;
- ``client.invoices``: starting an invoice's workflow;
- ``client.reruns``: starting a finance re-run.

The CLI, the API, the activities and the benchmarks go through it (operations -> client),
so none fails because the search attributes the workflows set are not registered yet.
"""
