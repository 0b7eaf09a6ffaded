"""``--model tailored``'s ``model_args`` as one frozen spec (:mod:`.model`), composed of the pruning
and adaptation specs, and the tables that name the backends and adapter strategies (:mod:`.backends`)."""
