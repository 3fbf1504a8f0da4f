"""The config: pydantic models (:mod:`.models`), the agent section (:mod:`.agent`), generated docs (:mod:`.docs`)."""
