"""Live reload of the FAQ, the phrasebook and the agents, without a restart.

Everything is loaded and validated first (the same checks as `check-config`); only a complete, valid
set replaces the running one, in one step on the event loop, so a bad file is refused with the
reason and the old content stays. What a reload takes from the re-read config: [[agents]],
[[groups]], [faq] and [handoff] (routes name groups); server, redis, shop and channel changes need a
restart and are reported as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.config import Config, ConfigError, load_config
from bot.encoder import Encoder
from bot.faq import FaqFileError, load_faq_files
from bot.phrasebook import Phrasebook, PhrasebookError
from bot.understanding import Understanding

RESTART_SECTIONS = ("server", "redis", "shop", "channels")


@dataclass(frozen=True)
class Content:
    """A validated set of what a reload replaces."""

    config: Config
    phrasebook: Phrasebook
    understanding: Understanding
    needs_restart: tuple[str, ...]  # sections that changed but only take effect after a restart


class ReloadError(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def load_content(path: str | Path | None, current: Config) -> Content:
    """Read and validate the config file (when there is one) and the files it names; raise ReloadError."""
    from bot.checks import faq_problems, phrasebook_problems

    fresh = current
    if path is not None:
        try:
            fresh = load_config(path)
        except ConfigError as exc:
            raise ReloadError(exc.problems) from None
    problems = faq_problems(fresh.faq_paths) + phrasebook_problems(current.phrasebook_path)
    if problems:
        raise ReloadError(problems)
    try:
        phrasebook = Phrasebook.load(current.phrasebook_path, current.shop.locale)
        understanding = Understanding(load_faq_files(fresh.faq_paths),
                                      encoder=Encoder(current.path(current.redis.data_dir) / "embeddings"))
    except (FaqFileError, PhrasebookError) as exc:  # changed between the check and the load
        raise ReloadError([str(exc)]) from None
    config = current.model_copy(update={"agents": fresh.agents, "groups": fresh.groups, "faq": fresh.faq,
                                        "handoff": fresh.handoff})
    changed = tuple(s for s in RESTART_SECTIONS if getattr(fresh, s) != getattr(current, s))
    return Content(config, phrasebook, understanding, changed)
