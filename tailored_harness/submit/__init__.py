"""Submission packages: what a ``--model tailored`` run scored, packaged so others can check it.

:mod:`.runs` reads lm-eval output folders, :mod:`.manifest` hashes every file a package holds or
points at and rechecks them, :mod:`.card` writes the leaderboard request file and the model card,
and :mod:`.package` puts them together (``tailored export-submission``, ``tailored verify-submission``).
"""
