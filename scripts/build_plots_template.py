"""Build the HTML page template that makes `dvc plots show` / `dvc plots diff` work offline.

DVC's default page loads vega, vega-lite and vega-embed from a CDN (dvc_render's
``{scripts}`` placeholder), so it is blank without a network. This template leaves that
placeholder out and inlines the three libraries instead; DVC only requires
``{plot_divs}``. Enable it once per clone (the path is relative to ``.dvc/``)::

    dvc config plots.html_template plots_template.html

The libraries come from the npm registry (``npm pack``, which checks their integrity),
at the exact versions below; their ``build/*.min.js`` bundles are copied verbatim, with
their sha256 and BSD-3-Clause licence recorded in the page. Run with ``--from DIR`` to
use tarballs already packed into DIR (no network).

Usage: python scripts/build_plots_template.py [--out .dvc/plots_template.html] [--from DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import tarfile
import tempfile
from pathlib import Path

# Same majors as DVC's own CDN tags (vega 5, vega-lite 5, vega-embed 6), newest releases.
PACKAGES = {"vega": "5.33.1", "vega-lite": "5.23.0", "vega-embed": "6.29.0"}
# dvc_render substitutes these in the page; none may appear inside the inlined code.
PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")
ROOT = Path(__file__).resolve().parents[1]

PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <!--
    Offline template for `dvc plots show` (scripts/build_plots_template.py). It inlines
{provenance}
    Each is BSD-3-Clause licensed, Copyright (c) the Vega project authors
    (University of Washington Interactive Data Lab); see https://github.com/vega.
    -->
{scripts}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def inline_script(name: str, code: str) -> str:
    """One ``<script>`` element holding ``code``, safe to embed in the page.

    ``</script`` inside the code would end the element early; ``<\\/script`` means the
    same in any JavaScript string or regular expression. A DVC placeholder inside the
    code would be replaced by DVC, so it is refused.
    """
    for placeholder in PLACEHOLDERS:
        if placeholder in code:
            raise ValueError(f"{name} contains the DVC placeholder {placeholder}")
    code = code.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")
    return f'    <script type="text/javascript">/* {name} */\n{code}\n    </script>'


def build_page(libraries: dict[str, tuple[str, str]]) -> str:
    """The template from ``name -> (version, minified code)``, in load order."""
    provenance = "\n".join(
        f"    {name} {version} (build/{name}.min.js, sha256 "
        f"{hashlib.sha256(code.encode()).hexdigest()})"
        for name, (version, code) in libraries.items()
    )
    scripts = "\n".join(inline_script(name, code) for name, (_, code) in libraries.items())
    return PAGE.format(provenance=provenance, scripts=scripts)


def read_libraries(folder: Path) -> dict[str, tuple[str, str]]:
    """``build/<name>.min.js`` from each ``<name>-<version>.tgz`` in ``folder``."""
    libraries = {}
    for name, version in PACKAGES.items():
        tarball = folder / f"{name}-{version}.tgz"
        with tarfile.open(tarball) as archive:
            member = archive.extractfile(f"package/build/{name}.min.js")
            if member is None:
                raise FileNotFoundError(f"{tarball}: no package/build/{name}.min.js")
            libraries[name] = (version, member.read().decode("utf-8"))
    return libraries


def npm_pack(folder: Path) -> None:
    specs = [f"{name}@{version}" for name, version in PACKAGES.items()]
    command = ["npm", "pack", "--loglevel=error", *specs, "--pack-destination", str(folder)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".dvc/plots_template.html")
    parser.add_argument("--from", dest="source", type=Path, help="folder of packed tarballs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        source = args.source
        if source is None:
            source = Path(scratch)
            npm_pack(source)
        page = build_page(read_libraries(source))
    args.out.write_text(page, encoding="utf-8")
    print(f"wrote {args.out} ({len(page.encode()) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
