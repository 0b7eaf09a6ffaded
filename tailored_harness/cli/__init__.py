"""The ``tailored`` command (:func:`.main.main`): prune, adapt, import GGUF files, build the
reference model and report suites, on top of every other stage."""
