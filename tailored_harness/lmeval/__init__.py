"""Integration with lm-eval: the ``tailored`` model (:mod:`.model`), the interpreter start-up hook
that registers it with lm-eval 0.4.13 (:mod:`.startup`), and the run's tasks seen from inside a
scoring call (:mod:`.run_context`).

Nothing is imported here: the ``.pth`` hook imports :mod:`.startup` at every interpreter start.
"""
