"""What a reload changed, by name: the audit trail's summary of two tollway.yaml versions."""

from __future__ import annotations

from decimal import Decimal

from tollway.config import load_config
from tollway.config.changes import config_changes
from tollway.config.schema import KeyConfig, LoggingPolicy, TollwayConfig
from tollway.ids import hash_key


def test_nothing_changed_is_empty() -> None:
    config = load_config(None)
    assert config_changes(config, config.model_copy()) == {}


def test_entries_added_removed_and_changed_by_name_and_sections_by_section() -> None:
    before = load_config(None)
    key = KeyConfig(id="k_new", hash=hash_key("s"), business_line="ops")
    after = before.model_copy(
        update={
            "models": [
                m.model_copy(update={"output_per_mtok": Decimal(99)}) if m.name == "gpt-4o" else m
                for m in before.models
                if m.name != "claude-sonnet-4"
            ],
            "keys": [key],
            "logging": LoggingPolicy(content=True),
        }
    )
    assert config_changes(before, after) == {
        "models": {"removed": ["claude-sonnet-4"], "changed": ["gpt-4o"]},
        "keys": {"added": ["k_new"]},
        "sections": ["logging"],
    }
    # a key's hash changing (a secret replaced in the file) is a change, not named by its hash
    rotated = after.model_copy(update={"keys": [key.model_copy(update={"hash": hash_key("t")})]})
    assert config_changes(after, rotated) == {"keys": {"changed": ["k_new"]}}


def test_every_part_of_the_file_is_compared() -> None:
    """A section added to tollway.yaml must be named here, or its edits go unaudited."""
    from tollway.config.changes import NAMED, SECTIONS

    assert set(NAMED) | set(SECTIONS) == set(TollwayConfig.model_fields)
