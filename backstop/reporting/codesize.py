"""Code size of every deployable contract against EIP-170 -> reports/codesize.json.

What EIP-170 limits is the code a deployment leaves on chain. For Vyper that is the runtime
bytecode followed by the immutables section, which the constructor appends after copying
the runtime (an immutable is read with CODECOPY from past the end of the runtime code). So
the deployed size is runtime + immutables, and the runtime bytecode alone understates it
(by 448 B for MarginVault, 704 B for InsurancePool).

Where the numbers come from: Vyper (>= 0.3.10) ends every initcode with a CBOR trailer of
its own sizes, followed by the trailer's length in two bytes:
  0.4.x: [integrity hash, runtime length, [data section lengths], immutables length, {"vyper": version}]
  0.3.10: the same without the integrity hash.
Reading it from the compiled deployment bytecode (ape's contract types) gives the
compiler's exact figure without a second compiler run, and unlike `vyper -f layout` needs
no summing over nested module layouts. The runtime length in the trailer is checked
against the runtime bytecode ape holds, so a change in the trailer's format fails loudly
instead of yielding wrong sizes. tests/test_codesize.py also compares the totals with the
code Anvil stores after a real deployment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import cbor2
import vyper.ast as vy_ast
from rich.table import Table

EIP170_LIMIT = 24_576  # bytes of deployed code (EIP-170, Spurious Dragon)
DEFAULT_PATH = Path("reports/codesize.json")
CONTRACTS_DIR = Path("contracts")
FIELDS = ("runtime", "immutables", "total", "limit", "headroom")  # one report entry's keys


@dataclass(frozen=True)
class CodeSize:
    runtime: int
    immutables: int
    limit: int = EIP170_LIMIT

    @property
    def total(self) -> int:
        return self.runtime + self.immutables

    @property
    def headroom(self) -> int:
        return self.limit - self.total

    def as_dict(self) -> dict[str, int]:
        return {field: getattr(self, field) for field in FIELDS}


class CodeSizeError(RuntimeError):
    """The compiled bytecode does not carry the Vyper size trailer this module reads."""


def vyper_trailer(initcode: bytes) -> list[Any]:
    """The CBOR list Vyper appends to an initcode (its last two bytes: the trailer's length,
    counting those two bytes)."""
    length = int.from_bytes(initcode[-2:], "big")
    if not 2 < length <= len(initcode):
        raise CodeSizeError(f"no Vyper trailer (length field {length})")
    trailer = cbor2.loads(initcode[-length:-2])
    if not (isinstance(trailer, list) and isinstance(trailer[-1], dict) and "vyper" in trailer[-1]):
        raise CodeSizeError(f"unexpected Vyper trailer {trailer!r}")
    return trailer


def code_size(deployment_bytecode: bytes, runtime_bytecode: bytes) -> CodeSize:
    """Deployed size of one contract from its compiled initcode and runtime bytecode."""
    # Indexed from the end, where 0.3.10 and 0.4.x agree: [..., runtime, sections, immutables, version].
    trailer = vyper_trailer(deployment_bytecode)
    runtime, immutables = trailer[-4], trailer[-2]
    if runtime != len(runtime_bytecode):
        raise CodeSizeError(f"trailer says runtime is {runtime} B, the runtime bytecode is {len(runtime_bytecode)} B")
    return CodeSize(runtime=runtime, immutables=immutables)


def module_names(sources: Iterable[Path]) -> set[str]:
    """Names of the project files that another project file imports: in Vyper 0.4 those are
    modules (e.g. pool_shares.vy), compiled into their importers and never deployed alone.
    Parsed with Vyper's own parser, so comments and strings cannot fool it. (The project
    imports interfaces as .vyi files; a .vy imported only for its interface would also be
    counted as a module here.)"""
    paths = list(sources)
    stems = {path.stem for path in paths}
    imported = set()
    for path in paths:
        for node in vy_ast.parse_to_ast(path.read_text()).body:
            if isinstance(node, vy_ast.Import):
                imported.add(node.name.rsplit(".", 1)[-1])
            elif isinstance(node, vy_ast.ImportFrom):
                imported.add(node.name)
    return imported & stems


def deployable_sources(contracts_dir: Path = CONTRACTS_DIR) -> list[Path]:
    """contracts/*.vy minus modules. Only the top level: mocks/ holds test doubles that are
    never deployed on a live network (backstop.client.deploy deploys them locally only)."""
    sources = sorted(contracts_dir.glob("*.vy"))
    modules = module_names(sources)
    return [path for path in sources if path.stem not in modules]


def measure(project, contracts_dir: Path = CONTRACTS_DIR) -> dict[str, CodeSize]:
    """{contract name: CodeSize} for every deployable, from ape's compiled contract types
    (compiling first if the sources changed)."""
    sizes = {}
    for path in deployable_sources(contracts_dir):
        contract_type = getattr(project, path.stem).contract_type
        sizes[path.stem] = code_size(
            _bytes(contract_type.deployment_bytecode.bytecode),
            _bytes(contract_type.runtime_bytecode.bytecode),
        )
    return dict(sorted(sizes.items()))


def _bytes(hex_code: str) -> bytes:
    return bytes.fromhex(hex_code.removeprefix("0x"))


def over_limit(sizes: Mapping[str, CodeSize]) -> dict[str, CodeSize]:
    return {name: size for name, size in sizes.items() if size.total > size.limit}


def write(sizes: Mapping[str, CodeSize], path: str | Path = DEFAULT_PATH) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({name: size.as_dict() for name, size in sorted(sizes.items())}, indent=2) + "\n")
    return path


def load(path: str | Path = DEFAULT_PATH) -> dict[str, CodeSize]:
    """A written report, validated: every entry has exactly the five integer fields and its
    total and headroom agree with its parts. Raises ValueError otherwise."""
    raw = json.loads(Path(path).read_text())
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{path}: expected a non-empty object of contracts")
    sizes = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or set(entry) != set(FIELDS):
            raise ValueError(f"{path}: {name}: expected the keys {', '.join(FIELDS)}")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in entry.values()):
            raise ValueError(f"{path}: {name}: every value must be an integer")
        size = CodeSize(entry["runtime"], entry["immutables"], entry["limit"])
        if size.as_dict() != entry:
            raise ValueError(f"{path}: {name}: total or headroom disagree with runtime + immutables")
        sizes[name] = size
    return sizes


def table(sizes: Mapping[str, CodeSize], title: str = "Deployed code size (EIP-170)") -> Table:
    """Rows sorted by name; a contract over the limit is red, within 1 KiB of it yellow."""
    result = Table(title=title, title_justify="left")
    result.add_column("contract", no_wrap=True)
    for field in FIELDS:
        result.add_column(field, justify="right")
    for name, size in sorted(sizes.items()):
        colour = "red" if size.headroom < 0 else "yellow" if size.headroom < 1024 else "green"
        *cells, headroom = (f"{getattr(size, field):,}" for field in FIELDS)
        result.add_row(name, *cells, f"[{colour}]{headroom}[/]")
    return result
