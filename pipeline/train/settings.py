"""Training settings that check themselves: :class:`~vlcurate.pipeline.config.Config` plus an
exclusive lower bound, ``metadata={"above": 0}``, for values that must be positive but need not
be whole (a learning rate)."""

import dataclasses

from vlcurate.pipeline.config import Config, ConfigError


class TrainSettings(Config):
    """A :class:`Config` whose fields may also say ``above`` (value > bound)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for f in dataclasses.fields(self):
            bound, value = f.metadata.get("above"), getattr(self, f.name)
            if bound is not None and value is not None and not value > bound:
                name = f"{self.section}.{f.name}" if self.section else f.name
                raise ConfigError(f"{name}: {value!r} is not allowed (a number > {bound})")
