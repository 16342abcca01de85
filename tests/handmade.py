"""Hand-built graphs for exporter, view and schema tests: no torch needed."""

from __future__ import annotations

from dataclasses import replace

from fxviz.graph import (
    Compilation,
    CompiledGraph,
    Graph,
    GraphBreak,
    MemoryEstimate,
    Module,
    ModuleMemory,
    Node,
    ParamCount,
    Recompile,
    SourceLocation,
    Totals,
    Value,
)

# A Llama of 12 small decoder layers (`hf:llama --config …`): deep, and quick to build.
TINY_LLAMA = [
    "num_hidden_layers=12",
    "hidden_size=64",
    "num_attention_heads=4",
    "num_key_value_heads=2",
    "intermediate_size=128",
    "vocab_size=1000",
]


def tensor(*shape: int, dtype: str = "float32", path: str = "") -> Value:
    return Value("tensor", path, shape=shape, dtype=dtype, device="meta")


def chain_graph() -> Graph:
    """x -> fc1 (Linear) -> relu -> output."""
    return Graph(
        name="Chain",
        source="chain.py:Chain",
        tracer="fx",
        device="meta",
        nodes=(
            Node("x", "input", "x", outputs=(tensor(1, 4),)),
            Node(
                "fc1",
                "module",
                "fc1",
                module_class="Linear",
                inputs=("x",),
                outputs=(tensor(1, 8),),
                params=ParamCount(40, 0),
                flops=64,
                source=SourceLocation("chain.py", 10, "forward", "x = self.fc1(x)"),
            ),
            Node(
                "relu",
                "function",
                "torch.nn.functional.relu",
                inputs=("fc1",),
                outputs=(tensor(1, 8),),
                arguments="inplace=True",
            ),
            Node("output", "output", "output", inputs=("relu",), outputs=(tensor(1, 8),)),
        ),
        modules=(
            Module("", "Chain", "chain.Chain", ParamCount(40, 0)),
            Module(
                "fc1",
                "Linear",
                "torch.nn.modules.linear.Linear",
                ParamCount(40, 0),
                extra_repr="in_features=4, out_features=8, bias=True",
                hparams="in_features=4, out_features=8",
            ),
        ),
        totals=Totals(ParamCount(40, 0), 0, 64),
    )


def branch_graph() -> Graph:
    """A residual block inside clusters: two branches merge in an add; one frozen conv."""
    return Graph(
        name="Branch",
        source="branch",
        tracer="fx",
        device="meta",
        nodes=(
            Node("x", "input", "x", outputs=(tensor(1, 3, 8, 8),)),
            Node(
                "stem",
                "module",
                "stem",
                module_class="Conv2d",
                inputs=("x",),
                outputs=(tensor(1, 4, 8, 8),),
                params=ParamCount(0, 112),
            ),
            Node(
                "block_0_conv",
                "module",
                "block.0.conv",
                scope="block.0",
                module_class="Conv2d",
                inputs=("stem",),
                outputs=(tensor(1, 4, 8, 8),),
                params=ParamCount(148, 0),
            ),
            Node(
                "add",
                "function",
                "operator.add",
                scope="block.0",
                inputs=("block_0_conv", "stem"),
                outputs=(tensor(1, 4, 8, 8),),
            ),
            Node(
                "size",
                "method",
                "size",
                inputs=("add",),
                arguments="0",
                outputs=(Value("int", text="1"),),
            ),
            Node(
                "split",
                "function",
                "torch.split",
                inputs=("add",),
                arguments="2, dim=1",
                outputs=(tensor(1, 2, 8, 8, path="[0]"), tensor(1, 2, 8, 8, path="[1]")),
            ),
            Node(
                "getitem",
                "function",
                "getitem",
                inputs=("split",),
                arguments="0",
                outputs=(tensor(1, 2, 8, 8),),
            ),
            Node(
                "output",
                "output",
                "output",
                inputs=("getitem", "size"),
                outputs=(tensor(1, 2, 8, 8, path="[0]"), Value("int", "[1]", text="1")),
            ),
        ),
        modules=(
            Module("", "Branch", "branch.Branch", ParamCount(148, 112)),
            Module(
                "stem",
                "Conv2d",
                "torch.nn.Conv2d",
                ParamCount(0, 112),
                hparams="3, 4, kernel_size=3",
            ),
            Module("block", "Sequential", "torch.nn.Sequential", ParamCount(148, 0)),
            Module("block.0", "Block", "branch.Block", ParamCount(148, 0)),
            Module(
                "block.0.conv",
                "Conv2d",
                "torch.nn.Conv2d",
                ParamCount(148, 0),
                hparams="4, 4, kernel_size=3",
            ),
        ),
        totals=Totals(ParamCount(148, 112), 0, 0),
    )


def hostile_graph() -> Graph:
    """Names with every character DOT, HTML or JSON could choke on."""
    weird = 'a<b>{c}|d"e&f\\g é×中'
    return Graph(
        name='Hostile "<graph>"',
        source=weird,
        tracer="fx",
        device="meta",
        nodes=(
            Node("<x>", "input", weird, outputs=(tensor(2, dtype="int64"),)),
            Node(
                'n"1',
                "module",
                f"{weird}.m",
                scope=weird,
                module_class="My<Mod>",
                inputs=("<x>",),
                arguments=weird,
                outputs=(tensor(2),),
            ),
            Node("output", "output", "output", inputs=('n"1',), outputs=(tensor(2),)),
        ),
        modules=(
            Module("", "Root", "x.Root"),
            Module(weird, "{Weird|Class}", "x.Weird", hparams=weird),
            Module(f"{weird}.m", "My<Mod>", "x.MyMod", hparams=weird),
        ),
        notes=(weird,),
    )


# Names the issue lists: a closing quote and an edge, markup, a script end, a newline.
HOSTILE_NAMES = ['"]; A-->B', "<img src=x onerror=alert(1)>", "</script>", "two\nlines {x}"]


def hostile_names_graph() -> Graph:
    """A chain of modules named (and classed) as the issue lists: every text format's traps."""
    nodes = [Node("x", "input", "x", outputs=(tensor(2),))]
    modules = [Module("", "Root", "Root")]
    for i, name in enumerate(HOSTILE_NAMES):
        modules.append(Module(name, name, name, hparams=name))
        nodes.append(
            Node(
                f"m{i}",
                "module",
                name,
                module_class=name,
                inputs=(nodes[-1].id,),
                outputs=(tensor(2),),
            )
        )
    nodes.append(Node("output", "output", "output", inputs=(nodes[-1].id,), outputs=(tensor(2),)))
    return Graph(
        name='</script><img src=x onerror=alert(1)>"]',
        source="",
        tracer="fx",
        device="meta",
        nodes=tuple(nodes),
        modules=tuple(modules),
    )


def lines_graph() -> Graph:
    """`torch.tanh(self.fc(x.view(1, 8)))` on one line, then a hand-written norm (no
    submodules, its own weight) whose `pow(2).mean(-1)` is one line of two ops."""

    def at(line: int, code: str, file: str = "net.py") -> SourceLocation:
        return SourceLocation(file, line, "forward", code)

    outer = at(5, "return self.norm(torch.tanh(self.fc(x.view(1, 8))))")
    norm_line = at(11, "variance = x.pow(2).mean(-1, keepdim=True)", "norm.py")
    return Graph(
        name="Lines",
        source="net.py:Net",
        tracer="fx",
        device="meta",
        nodes=(
            Node("x", "input", "x", outputs=(tensor(8),)),
            Node("view", "method", "view", inputs=("x",), outputs=(tensor(1, 8),), source=outer),
            Node(
                "fc",
                "module",
                "fc",
                module_class="Linear",
                inputs=("view",),
                outputs=(tensor(1, 8),),
                params=ParamCount(72, 0),
                flops=128,
                source=outer,
            ),
            Node(
                "tanh",
                "function",
                "torch.tanh",
                inputs=("fc",),
                outputs=(tensor(1, 8),),
                source=outer,
            ),
            Node(
                "norm_weight",
                "constant",
                "norm.weight",
                scope="norm",
                outputs=(tensor(8),),
                params=ParamCount(8, 0),
            ),
            Node(
                "pow_1",
                "method",
                "pow",
                scope="norm",
                inputs=("tanh",),
                outputs=(tensor(1, 8),),
                flops=8,
                source=norm_line,
            ),
            Node(
                "mean",
                "method",
                "mean",
                scope="norm",
                inputs=("pow_1",),
                outputs=(tensor(1, 1),),
                source=norm_line,
            ),
            Node(
                "mul",
                "function",
                "operator.mul",
                scope="norm",
                inputs=("norm_weight", "tanh", "mean"),
                outputs=(tensor(1, 8),),
                flops=16,
                source=at(12, "return self.weight * x * variance", "norm.py"),
            ),
            Node("output", "output", "output", inputs=("mul",), outputs=(tensor(1, 8),)),
        ),
        modules=(
            Module("", "Net", "net.Net", ParamCount(80, 0)),
            Module("fc", "Linear", "torch.nn.modules.linear.Linear", ParamCount(72, 0)),
            Module("norm", "RMSNorm", "net.RMSNorm", ParamCount(8, 0)),
        ),
        totals=Totals(ParamCount(80, 0), 0, 152),
    )


LINE = SourceLocation("chain.py", 11, "forward", 'x = x * x.mean().item()  # "<b>|{}"')


def compiled_chain() -> Graph:
    """Chain with fc1 in graph 1, an `.item()` run in Python (a break at it), relu in graph 2."""
    chain = chain_graph()
    x, fc1, relu, output = chain.nodes
    item = Node(
        "item",
        "method",
        "item",
        inputs=("fc1",),
        outputs=(Value("float", text="0.5"),),
        source=LINE,
        compiled=(0,),
        breaks=(0,),
    )
    nodes = (
        x,
        replace(fc1, compiled=(1,)),
        item,
        replace(relu, inputs=("fc1", "item"), compiled=(2,)),
        output,
    )
    compilation = Compilation(
        graphs=(CompiledGraph(1, 3, 64), CompiledGraph(2, 2, 0)),
        breaks=(
            GraphBreak(
                reason="x.item(): a Python number from a tensor",
                detail="Unsupported Tensor.item() call with capture_scalar_outputs=False",
                after=1,
                source=LINE,
                stack=(LINE,),
                node="item",
            ),
        ),
        recompiles=(
            Recompile(
                "self.calls == 1",
                "a Python number on the model changed between calls",
                SourceLocation("chain.py", 9, "forward", "self.calls += 1"),
            ),
        ),
    )
    return replace(chain, name="CompiledChain", nodes=nodes, compilation=compilation)


def memory_chain(mode: str = "sgd") -> Graph:
    """Chain with a memory estimate of a training step: fc1 saved 128 bytes for backward and
    held 160 live; the root's share is fc1's plus relu's."""
    chain = chain_graph()
    shares = {"": ModuleMemory(160, 192), "fc1": ModuleMemory(128, 160)}
    modules = tuple(replace(m, memory=shares[m.path]) for m in chain.modules)
    estimate = MemoryEstimate(
        mode=mode,
        dtype="fp32",
        batch=1,
        peak=512,
        params=160,
        buffers=0,
        grads=160,
        optimizer=0,
        activations=192,
        saved=160,
        peak_at="fc1",
        peak_phase="backward",
    )
    return replace(chain, modules=modules, memory=estimate)
