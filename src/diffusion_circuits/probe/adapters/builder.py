"""Helpers every adapter uses to fill a :class:`~diffusion_circuits.probe.names.NameMap`.

An adapter walks its model in forward order and calls these; they know the canonical
sub-names shared across families (``<resnet>.residual``, the attention sites, the parts
of a diffusers ``BasicTransformerBlock``), and the role of each, so no adapter spells
them twice.
"""

from __future__ import annotations

from torch import nn

from diffusion_circuits.probe.attention_recipes import recipe_for
from diffusion_circuits.probe.names import ATTENTION_SITES, LAYER_GROUPS, HookPoint, NameMap

__all__ = ["NameMapBuilder", "depth_groups", "is_attention"]


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


def is_attention(module: nn.Module) -> bool:
    """A diffusers attention module (``Attention``, or e.g. ``FluxAttention``): one with
    ``heads`` and a swappable processor."""
    return isinstance(getattr(module, "heads", None), int) and hasattr(module, "set_processor")


class NameMapBuilder:
    """Adds hook points to a fresh :class:`NameMap`, in the order they are added."""

    def __init__(self, groups: tuple[str, ...] = LAYER_GROUPS) -> None:
        """``groups``: the layer groups of this family, in forward order."""
        self.map = NameMap(group_order=groups)

    def add(
        self, name: str, module: nn.Module, path: str, group: str | None, **fields
    ) -> HookPoint:
        """A module's output (or element ``output_index`` of its output tuple)."""
        if name in self.map.points:
            raise ValueError(f"hook point {name!r} named twice: adapter bug")
        kind = fields.pop("kind", "module")
        point = HookPoint(name, kind, path, group, module, **fields)
        self.map.points[name] = point
        return point

    def resnet(
        self, name: str, module: nn.Module, path: str, group: str | None, main: bool = True
    ) -> None:
        """A ResNet block and, listed first (it finishes first), its residual branch.

        ``<name>.residual`` is ``conv2``'s output, the part added to the shortcut: editing
        it leaves ``shortcut(x)`` intact.
        """
        if isinstance(getattr(module, "conv2", None), nn.Module):
            self.add(f"{name}.residual", module.conv2, f"{path}.conv2", group, role="residual")
        self.add(name, module, path, group, role="resnet", main=main)

    def attention(
        self,
        name: str,
        module: nn.Module,
        path: str,
        group: str | None,
        main: bool = False,
        text_output: str | None = None,
    ) -> None:
        """A diffusers attention module: its output, then its per-head sites.

        The recipe reproducing its processor (``probe.attention_recipes``) says where its
        keys come from (``"self"``, ``"encoder"``, ``"joint"``, ``"encoder+self"``) and
        the token layout of its pattern. An attention no recipe reproduces is a hook
        point for its output only, and :attr:`NameMap.output_only` says why. With
        ``text_output`` (a joint attention returning ``(image, text)``), that name is
        the text stream's output.
        """
        if not is_attention(module):
            raise ValueError(
                f"{name} ({path}) is a {type(module).__name__}, not a diffusers Attention"
            )
        self.add(name, module, path, group, role="attention", main=main)
        if text_output is not None:
            self.add(text_output, module, path, group, role="attention", output_index=1)
        recipe, why = recipe_for(module)
        if recipe is None:
            self.map.output_only[name] = why
            return
        self.map.attention_heads[name] = module.heads
        self.map.attention_keys[name] = recipe.keys(module)
        self.map.attention_layout[name] = recipe.layout(module)
        for site in ATTENTION_SITES:
            self.add(
                f"{name}.{site}",
                module,
                path,
                group,
                kind="site",
                role="site",
                attention=name,
                site=site,
            )

    def transformer_block(
        self,
        name: str,
        block: nn.Module,
        path: str,
        group: str | None,
        adaln: bool = False,
        main: bool = False,
    ) -> None:
        """A diffusers ``BasicTransformerBlock``, in the order its parts finish.

        ``.adaln`` (with ``adaln``: ``norm1.linear``'s output, the six adaLN-Zero
        modulation vectors), ``.self`` (``attn1``), ``.fuser`` and ``.fuser.attn``
        (GLIGEN's gated self-attention over [pixels; grounding tokens], if any),
        ``.cross`` (``attn2``, if any), ``.ff`` (feed-forward output, before any gate)
        and the block's output itself.
        """
        if adaln and isinstance(getattr(block.norm1, "linear", None), nn.Module):
            self.add(
                f"{name}.adaln",
                block.norm1.linear,
                f"{path}.norm1.linear",
                group,
                role="modulation",
            )
        self.attention(f"{name}.self", block.attn1, f"{path}.attn1", group)
        fuser = getattr(block, "fuser", None)
        if fuser is not None:
            self.attention(f"{name}.fuser.attn", fuser.attn, f"{path}.fuser.attn", group)
            self.add(f"{name}.fuser", fuser, f"{path}.fuser", group, role="gate")
        if getattr(block, "attn2", None) is not None:
            self.attention(f"{name}.cross", block.attn2, f"{path}.attn2", group)
        self.add(f"{name}.ff", block.ff, f"{path}.ff", group, role="ff")
        self.add(name, block, path, group, role="block", main=main)

    def skip(self, source: str) -> HookPoint:
        """The next entry of the skip tuple, produced by hook point ``source``."""
        producer = self.map.points[source]
        k = len(self.map.skip_sources)
        return self.add(
            f"skip.{k}",
            producer.module,
            producer.path,
            producer.group,
            kind="skip",
            role="skip",
            source=source,
        )

    def done(self) -> NameMap:
        unknown = {p.group for p in self.map.points.values()} - {None, *self.map.group_order}
        if unknown:
            raise ValueError(f"unknown layer groups {sorted(unknown)}: adapter bug")
        return self.map
