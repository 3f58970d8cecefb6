"""Helpers every adapter uses to fill a :class:`~diffusion_circuits.probe.names.NameMap`.

An adapter walks its model in forward order and calls these; they know the canonical
sub-names shared across families (``<resnet>.residual``, the attention sites, the parts
of a diffusers ``BasicTransformerBlock``), so no adapter spells them twice.
"""

from __future__ import annotations

from torch import nn

from diffusion_circuits.probe.names import ATTENTION_SITES, LAYER_GROUPS, HookPoint, NameMap

__all__ = ["NameMapBuilder", "depth_groups"]


def depth_groups(n: int, groups: tuple[str, ...]) -> list[str]:
    """Group of each of ``n`` consecutive blocks: ``numpy.array_split`` into ``groups``.

    >>> depth_groups(4, ("a", "b", "c"))
    ['a', 'a', 'b', 'c']
    >>> depth_groups(2, ("a", "b", "c"))
    ['a', 'b']
    """
    base, extra = divmod(n, len(groups))
    sizes = [base + (i < extra) for i in range(len(groups))]
    return [group for group, size in zip(groups, sizes, strict=True) for _ in range(size)]


class NameMapBuilder:
    """Adds hook points to a fresh :class:`NameMap`, in the order they are added."""

    def __init__(self) -> None:
        self.map = NameMap()

    def add(
        self, name: str, module: nn.Module, path: str, group: str | None, **fields
    ) -> HookPoint:
        """A module's output (or the first element of its output tuple)."""
        if name in self.map.points:
            raise ValueError(f"hook point {name!r} named twice: adapter bug")
        kind = fields.pop("kind", "module")
        point = HookPoint(name, kind, path, group, module, **fields)
        self.map.points[name] = point
        return point

    def resnet(self, name: str, module: nn.Module, path: str, group: str | None) -> None:
        """A ResNet block and, listed first (it finishes first), its residual branch.

        ``<name>.residual`` is ``conv2``'s output, the part added to the shortcut: editing
        it leaves ``shortcut(x)`` intact.
        """
        if isinstance(getattr(module, "conv2", None), nn.Module):
            self.add(f"{name}.residual", module.conv2, f"{path}.conv2", group)
        self.add(name, module, path, group)

    def attention(self, name: str, module: nn.Module, path: str, group: str | None) -> None:
        """A diffusers ``Attention`` module: its output, then its per-head sites.

        Where its keys come from is read from the module: ``"encoder"`` (cross-attention,
        keys and values from ``encoder_hidden_states``) or ``"self"``. An attention with
        added key/value projections (``UNetMidBlock2DSimpleCrossAttn``) gets only its
        output as a hook point: no sites, no head interventions.
        """
        heads = getattr(module, "heads", None)
        if not isinstance(heads, int) or not hasattr(module, "set_processor"):
            raise ValueError(
                f"{name} ({path}) is a {type(module).__name__}, not a diffusers Attention"
            )
        self.add(name, module, path, group)
        if getattr(module, "added_kv_proj_dim", None) is not None:
            # keys = [own tokens; added encoder projections] (AttnAddedKVProcessor): the
            # recording processor does not reproduce it, so only the output is a hook point
            return
        self.map.attention_heads[name] = heads
        self.map.attention_keys[name] = (
            "encoder" if getattr(module, "is_cross_attention", False) else "self"
        )
        for site in ATTENTION_SITES:
            self.add(f"{name}.{site}", module, path, group, kind="site", attention=name, site=site)

    def transformer_block(
        self, name: str, block: nn.Module, path: str, group: str | None, adaln: bool = False
    ) -> None:
        """A diffusers ``BasicTransformerBlock``, in the order its parts finish.

        ``.adaln`` (with ``adaln``: ``norm1.linear``'s output, the six adaLN-Zero
        modulation vectors), ``.self`` (``attn1``), ``.cross`` (``attn2``, if any),
        ``.ff`` (feed-forward output, before any gate) and the block's output itself.
        """
        if adaln and isinstance(getattr(block.norm1, "linear", None), nn.Module):
            self.add(f"{name}.adaln", block.norm1.linear, f"{path}.norm1.linear", group)
        self.attention(f"{name}.self", block.attn1, f"{path}.attn1", group)
        if getattr(block, "attn2", None) is not None:
            self.attention(f"{name}.cross", block.attn2, f"{path}.attn2", group)
        self.add(f"{name}.ff", block.ff, f"{path}.ff", group)
        self.add(name, block, path, group)

    def skip(self, source: str) -> HookPoint:
        """The next entry of the skip tuple, produced by hook point ``source``."""
        producer = self.map.points[source]
        k = len(self.map.skip_sources)
        return self.add(
            f"skip.{k}", producer.module, producer.path, producer.group, kind="skip", source=source
        )

    def done(self) -> NameMap:
        unknown = {p.group for p in self.map.points.values()} - {None, *LAYER_GROUPS}
        if unknown:
            raise ValueError(f"unknown layer groups {sorted(unknown)}: adapter bug")
        return self.map
