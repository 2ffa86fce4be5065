"""The command-line adapter: ``cli.py`` and ``utilscli.py`` only assemble what is here.

- ``local_predict``: ``cli.py``'s command (predict on this machine); ``batch_run`` its ``--input``.
- ``*_commands``: one module per group of ``utilscli.py`` commands (train, predict, score,
  models, quality, capture, rollout, card).
- ``options`` and ``params``: the shared options and the click types they use;
  ``request_body``: the request ``--weight``/``--set``/``--body`` describe.
- ``http_client``: the one HTTP client and its error policy; ``loadgen``: the load engine.
- Renderers: ``prediction_output``, ``tables``, ``gate_report``, ``ct_report``,
  ``evaluation_report``, ``rollout``, ``capture_export``; ``errors``: one-line failures.
"""
