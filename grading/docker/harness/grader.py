"""otter-service's grader: grades one notebook inside a grading container,
running as the grader's uid, while the notebook's kernel runs as the
student's uid.

    python3 -I grader.py /autograder            # a cold grader
    (warmstart.py)  grader.py /autograder --warm --kernel-pid N
                    # started ahead, forked with its kernel: waits for "go"

The Docker runner lays out /autograder (see grading/docker) and starts the
kernel (ipykernel, as the student) on the connection file kernel/kernel.json
before starting this program (or warmstart.py forks both). The student's side can read nothing of
source/ (the autograder: tests and config), job/ (this grader's copy of the
notebook and metadata) or results/, and can write none of them.

How a grade is made, and what the kernel is trusted with:
  1. The notebook's cells run in the kernel, one by one, as otter runs them
     (errors do not stop the run; otter's seed is put in front of each
     cell). otter's own Notebook class is put in grading mode in the kernel,
     with its check() and check_all() only noting which questions the
     notebook checked, and when.
  2. Each question's tests (otter's OK-format files, read here and never
     shown to the kernel as files) run after the cell in which the notebook
     last checked them, or after the last cell, as otter does. A test case
     is a doctest; each of its examples is evaluated here:
       - an `assert E` is taken apart: the parts of E that depend on the
         notebook (its variables, the results of its functions) are asked
         of the kernel as values, serialized as tagged JSON by code sent
         with the request, and E itself is evaluated here, with the real
         modules and builtins, so the expected values never reach the
         kernel and the kernel never decides the verdict;
       - an example with an expected output is run in the kernel and its
         output compared here, with doctest's own checker (the kernel never
         sees the expected output);
       - anything else (a statement, an assert over values that cannot be
         serialized) runs in the kernel, which reports whether it raised;
         for such asserts of the form `X == constant`, decoys with other
         constants are sent too, in random order, and a kernel that claims
         two of them hold is lying.
  3. Scores are otter's: its OKTestFile and GradingResults classes, in this
     process, turn the test case verdicts into question scores, run the
     assignment's plugins, and write results.json (to_gradescope_dict).
     Nothing the kernel sends is unpickled or executed here: replies are
     JSON, bounded in size, and checked.
  4. What the kernel did that an honest kernel cannot do (a decoy that
     holds, a malformed or missing reply to a request) is listed in
     results.json under "otter_service" → "needs_review"; the service then
     holds the grade for course staff.
"""

import ast
import base64
import builtins
import copy
import doctest
import glob
import importlib
import json
import math
import os
import queue
import random
import re
import secrets
import sys
import time
import traceback

import nbformat

MAX_REPLY = 8 << 20  # bytes of one reply from the kernel
MAX_CELL_OUTPUT = 1 << 20
EXIT_KERNEL_DIED = 3
EXIT_KERNEL_ENDED = 4  # the kernel this grader forked from (warmstart.py) ended while grading
EXIT_SPARE_BROKEN = 5  # that kernel ended before the job was taken: nothing of the job ran
HEARTBEAT_GRACE = 30  # seconds without a heartbeat or a message before the kernel counts as dead


class KernelDied(Exception):
    pass


class Unsupported(Exception):
    """An example that cannot be evaluated here; it runs in the kernel."""


class Kernel:
    """A client of the student's kernel, which this process did not start."""

    def __init__(self, connection_file, timeout):
        from jupyter_client import BlockingKernelClient

        self.kc = BlockingKernelClient(connection_file=connection_file)
        self.kc.load_connection_file()
        self.kc.start_channels()
        self.timeout = timeout
        self.kc.wait_for_ready(timeout=120)

    def execute(self, code, user_expressions=None, store_history=True):
        """Runs code; returns (stdout text, error name or None, reply content)."""
        msg_id = self.kc.execute(code, store_history=store_history, user_expressions=user_expressions or {},
                                 allow_stdin=False, stop_on_error=False)
        out, size, error, idle = [], 0, None, False
        deadline = time.monotonic() + self.timeout
        silent_since = None
        while not idle:
            try:
                msg = self.kc.get_iopub_msg(timeout=1)
            except queue.Empty:
                # A kernel busy on its one CPU can miss heartbeats: only a
                # long silence counts as death here (the runner sees the
                # kernel's process end at once).
                if self.kc.is_alive():
                    silent_since = None
                elif silent_since is None:
                    silent_since = time.monotonic()
                elif time.monotonic() - silent_since > HEARTBEAT_GRACE:
                    raise KernelDied()
                if time.monotonic() > deadline:
                    raise KernelDied()
                continue
            silent_since = None
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            t, c = msg["msg_type"], msg["content"]
            if t == "stream" and c.get("name") == "stdout":
                text = str(c.get("text", ""))
                if size < MAX_REPLY:
                    out.append(text[: MAX_REPLY - size])
                    size += len(text)
            elif t == "error":
                error = str(c.get("ename", "Error"))
            elif t == "status" and c.get("execution_state") == "idle":
                idle = True
        while True:
            try:
                reply = self.kc.get_shell_msg(timeout=max(1, deadline - time.monotonic()))
            except queue.Empty:
                raise KernelDied()
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                return "".join(out), error, reply.get("content", {})


# Code sent to the kernel. It is defined anew in every request, so nothing
# the notebook left behind stands in for it; it prints one line, the
# request's random marker followed by JSON.
KERNEL_PRELUDE = r'''
def _otter_service_request(_marker, _mode, _src, _name):
    import sys as _sys, io as _io, json as _json, traceback as _tb, base64 as _b64
    _np = _sys.modules.get("numpy")
    class _Unsupported(Exception):
        pass
    def _enc(v, budget):
        budget[0] -= 1
        if budget[0] < 0:
            raise _Unsupported()
        t = type(v)
        if v is None or t is bool or t is int or t is float or t is str:
            if t is str and len(v) > 1 << 20:
                raise _Unsupported()
            return v
        if t is list:
            return [_enc(x, budget) for x in v]
        if t is tuple or t is set or t is frozenset:
            items = list(v)
            return {"__t": t.__name__, "v": [_enc(x, budget) for x in items]}
        if t is dict:
            return {"__t": "dict", "v": [[_enc(k, budget), _enc(x, budget)] for k, x in v.items()]}
        if t is bytes:
            return {"__t": "bytes", "v": _b64.b64encode(v).decode()}
        if _np is not None:
            if t is _np.ndarray and v.dtype.kind in "biuf" and v.size <= 1000000:
                return {"__t": "ndarray", "dtype": v.dtype.str, "shape": list(v.shape), "v": v.ravel().tolist()}
            if isinstance(v, _np.generic) and type(v).__module__ == "numpy" and v.dtype.kind in "biuf":
                return {"__t": "npscalar", "dtype": v.dtype.str, "v": v.item()}
        raise _Unsupported()
    _buf = _io.StringIO()
    _saved = _sys.stdout, _sys.displayhook
    _sys.stdout, _sys.displayhook = _buf, _sys.__displayhook__
    _res = {}
    try:
        if _mode == "run":
            exec(compile(_src, _name, "single"), globals())
        else:
            _v = eval(compile(_src, _name, "eval"), globals())
            try:
                _res["value"] = _enc(_v, [1000000])
            except _Unsupported:
                _res["unsupported"] = True
    except BaseException as _e:
        _res["exc"] = _tb.format_exception_only(type(_e), _e)[-1]
    finally:
        _sys.stdout, _sys.displayhook = _saved
    _res["out"] = _buf.getvalue()[: 1 << 20]
    try:
        _line = _json.dumps(_res)
    except (TypeError, ValueError):
        _line = _json.dumps({"unsupported": True, "out": _res["out"]})
    print(_marker + _line)
_otter_service_request(%r, %r, %r, %r)
del _otter_service_request
'''

# otter's Notebook in grading mode, with check() noting the question.
KERNEL_INIT = r'''
import otter as _otter_service_otter
_otter_service_otter.Notebook.init_grading_mode("tests")
_otter_service_checks = []
def _otter_service_check(self, question, global_env=None):
    _otter_service_checks.append(str(question))
def _otter_service_check_all(self):
    _otter_service_checks.append("*")
_otter_service_otter.Notebook.check = _otter_service_check
_otter_service_otter.Notebook.check_all = _otter_service_check_all
def _otter_service_drain():
    global _otter_service_checks
    c, _otter_service_checks = _otter_service_checks, []
    return c
del _otter_service_check, _otter_service_check_all
'''


class Grader:
    def __init__(self, kernel):
        self.kernel = kernel
        self.review = []  # what an honest kernel cannot have done
        self.requests = 0

    def flag(self, why):
        if len(self.review) < 20 and why not in self.review:
            self.review.append(why)

    def request(self, mode, src, name):
        """One request to the kernel; returns its decoded reply."""
        self.requests += 1
        marker = "\x1eotter-service-" + secrets.token_hex(16) + ":"
        out, _, _ = self.kernel.execute(KERNEL_PRELUDE % (marker, mode, src, name), store_history=False)
        lines = [l for l in out.split("\n") if l.startswith(marker)]
        if len(lines) != 1:
            self.flag(f"the kernel's reply to a test request was missing or repeated ({name})")
            return None
        try:
            res = json.loads(lines[0][len(marker):])
        except ValueError:
            self.flag(f"the kernel's reply to a test request was not JSON ({name})")
            return None
        if not isinstance(res, dict) or not isinstance(res.get("out", ""), str) or \
                not isinstance(res.get("exc") or "", str):
            self.flag(f"the kernel's reply to a test request was malformed ({name})")
            return None
        return res

    # ---- one doctest example ----

    def example(self, ex, name):
        """Returns (passed, report) for one doctest example, as doctest judges it."""
        if not ex.want and ex.exc_msg is None:
            try:
                tree = ast.parse(ex.source)
            except SyntaxError:
                tree = None
            if tree is not None and len(tree.body) == 1 and isinstance(tree.body[0], ast.Assert):
                try:
                    return self.assert_here(tree.body[0], name)
                except Unsupported:
                    return self.assert_in_kernel(ex, tree.body[0], name)
        res = self.request("run", ex.source, name)
        if res is None:
            return False, "the kernel did not answer"
        return judge(ex, res.get("out", ""), res.get("exc"))

    def assert_here(self, node, name):
        expr = Rewriter(self, name).rewrite(copy.deepcopy(node.test))  # node stays as sent, for decoys
        env = {"__builtins__": builtins, "_otter_service_fetch": expr.fetch_value}
        env.update(expr.modules)
        code = compile(ast.fix_missing_locations(ast.Expression(expr.tree)), name, "eval")
        try:
            ok = bool(eval(code, env))
        except KernelValueError as e:
            return False, "Exception raised:\n" + indent(kernel_text(e.exc))
        except Unsupported:
            raise
        except Exception as e:
            return False, "Exception raised:\n" + "".join(traceback.format_exception_only(type(e), e))
        if expr.output:
            return False, "Expected nothing\nGot:\n" + indent(kernel_text(expr.output))
        return (True, "") if ok else (False, "AssertionError")

    def assert_in_kernel(self, ex, node, name):
        decoys = decoys_of(node)
        order = [("real", ex.source)] + [("decoy", d) for d in decoys]
        random.shuffle(order)
        verdicts = {}
        held = 0
        for kind, src in order:
            res = self.request("run", src, name)
            if res is None:
                return False, "the kernel did not answer"
            passed, report = judge(ex, res.get("out", ""), res.get("exc"))
            if kind == "real":
                verdicts["real"] = (passed, report)
            held += passed
        if held > 1:
            self.flag(f"the kernel claimed that contradictory checks all hold ({name})")
            return False, "contradictory answers from the kernel"
        return verdicts["real"]

    # ---- a test file ----

    def run_test(self, path):
        from otter.test_files.abstract_test import TestCaseResult
        from otter.test_files.ok_test import OKTestFile

        tf = OKTestFile.from_file(path)
        tf.test_case_results = []
        for i, case in enumerate(tf.test_cases):
            name = f"{tf.name} {i}"
            examples = [e for e in doctest.DocTestParser().parse(case.body, name) if isinstance(e, doctest.Example)]
            if case.hidden:
                for e in examples:
                    for piece in [e.source.strip()] + [ast.unparse(n) for n in ast.walk(safe_parse(e.source))
                                                       if isinstance(n, (ast.Call, ast.Compare, ast.Subscript))]:
                        if len(piece) >= 6:
                            WITHHELD.add(piece)
            failures = []
            for j, ex in enumerate(examples):
                passed, report = self.example(ex, f"<doctest {name}[{j}]>")
                if not passed:
                    failures.append(f"Failed example:\n{indent(ex.source)}{report.rstrip()}\n")
            if failures:
                message = "❌ Test case failed\n" + "".join(failures)
            else:
                message = "✅ Test case passed"
            tf.test_case_results.append(TestCaseResult(test_case=case, message=message, passed=not failures))
        return tf


class KernelValueError(Exception):
    def __init__(self, exc):
        self.exc = exc


# Builtins and module functions evaluated here rather than in the kernel:
# pure functions a test uses to compare the notebook's values.
PURE_BUILTINS = {
    "abs", "all", "any", "bool", "dict", "float", "frozenset", "int", "isinstance", "len", "list",
    "max", "min", "round", "set", "sorted", "str", "sum", "tuple", "type", "repr", "reversed", "zip",
    "enumerate", "range", "map", "filter", "hasattr", "issubclass", "divmod", "pow", "format", "callable",
}
PURE_MODULE_FUNCS = {
    ("numpy", "isclose"), ("numpy", "allclose"), ("numpy", "array_equal"), ("numpy", "array"),
    ("numpy", "all"), ("numpy", "any"), ("numpy", "abs"), ("numpy", "round"), ("numpy", "isnan"),
    ("numpy", "sum"), ("numpy", "mean"), ("numpy", "std"), ("numpy", "sort"), ("numpy", "arange"),
    ("numpy", "array_equiv"), ("numpy", "count_nonzero"), ("numpy", "unique"), ("numpy", "isin"),
    ("math", "isclose"), ("math", "isnan"), ("math", "isinf"), ("math", "sqrt"), ("math", "floor"),
    ("math", "ceil"), ("math", "fabs"),
}
# Modules whose functions keep hidden state: a call into them is made in the
# kernel, or the example runs there.
STATEFUL = ("random", "numpy.random", "secrets", "time", "datetime", "os", "sys", "io", "builtins")
# ... except constructors of generators from a seed the test gives.
SEEDED = ("numpy.random.default_rng", "numpy.random.RandomState", "numpy.random.Generator", "random.Random")


def stateful(dotted):
    return dotted not in SEEDED and any(dotted == s or dotted.startswith(s + ".") for s in STATEFUL)


class Rewriter:
    """Rewrites an assert's expression so that it evaluates here: every part
    that depends on the notebook becomes _otter_service_fetch(i), a value
    asked of the kernel when evaluation reaches it."""

    def __init__(self, grader, name):
        self.grader, self.name = grader, name
        self.fetches = []
        self.modules = {}
        self.kinds = None
        self.output = ""

    def rewrite(self, node):
        for n in ast.walk(node):
            if isinstance(n, (ast.Lambda, ast.GeneratorExp, ast.NamedExpr, ast.Await, ast.Yield, ast.YieldFrom,
                              ast.ListComp, ast.SetComp, ast.DictComp, ast.Starred)):
                raise Unsupported()
        names = sorted({n.id for n in ast.walk(node) if isinstance(n, ast.Name)})
        self.kinds = self.classify(names)
        self.tree = self.visit(node)
        return self

    def classify(self, names):
        """Asks the kernel what each name is: a module (and which), a
        builtin it has not redefined, or one of the notebook's values."""
        src = "{n: (('module', getattr(globals()[n], '__name__', '')) if type(globals()[n]).__name__ == 'module' " \
              "else ('value', '')) if n in globals() else (('builtin', '') if hasattr(__import__('builtins'), n) " \
              "else ('missing', '')) for n in %r}" % (names,)
        res = self.grader.request("eval", src, self.name)
        kinds = {}
        value = res.get("value") if res else None
        if not isinstance(value, dict) or value.get("__t") != "dict":
            raise Unsupported()
        for pair in value.get("v", []):
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                raise Unsupported()
            v = pair[1]
            if not (isinstance(v, dict) and v.get("__t") == "tuple" and len(v.get("v", [])) == 2):
                raise Unsupported()
            kinds[pair[0]] = tuple(str(x) for x in v["v"])
        if set(kinds) != set(names):
            raise Unsupported()
        return kinds

    def module_path(self, node):
        """The dotted module path of a Name/Attribute chain rooted at a
        module name, or None."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        kind, mod = self.kinds.get(node.id, ("", ""))
        if kind != "module" or not re.fullmatch(r"[A-Za-z][\w.]*", mod):
            return None
        return [mod] + parts[::-1], node.id

    def depends(self, node):
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and self.kinds.get(n.id, ("value",))[0] in ("value", "missing"):
                return True
        return False

    def fetch_node(self, node):
        i = len(self.fetches)
        self.fetches.append(ast.unparse(node))
        return ast.Call(func=ast.Name(id="_otter_service_fetch", ctx=ast.Load()), args=[ast.Constant(i)], keywords=[])

    def bind_module(self, alias, path):
        try:
            self.modules[alias] = importlib.import_module(path[0])
        except Exception:
            raise Unsupported()

    def visit(self, node):
        if isinstance(node, ast.Name):
            kind, mod = self.kinds[node.id]
            if kind in ("value", "missing"):
                return self.fetch_node(node)
            if kind == "module":
                self.bind_module(node.id, [mod])
                return node
            if node.id in PURE_BUILTINS or node.id in ("True", "False", "None"):
                return node
            raise Unsupported()
        if isinstance(node, ast.Constant):
            return node
        if isinstance(node, ast.Call):
            mp = self.module_path(node.func)
            if mp is not None and len(mp[0]) == 2 and tuple(mp[0]) in PURE_MODULE_FUNCS:
                self.bind_module(mp[1], mp[0])
                return self.generic(node, skip_func=True)
            if isinstance(node.func, ast.Name) and self.kinds[node.func.id][0] == "builtin" \
                    and node.func.id in PURE_BUILTINS:
                return self.generic(node, skip_func=True)
            if self.depends(node.func) or (mp is not None and self.depends(node)):
                # the notebook's function or method, or a module's function
                # applied to the notebook's values: the kernel computes it
                return self.fetch_node(node)
            if isinstance(node.func, ast.Attribute) and not self.depends(node):
                return self.own(node)  # e.g. np.random.default_rng(42).integers(0, 6, size=1000)
            raise Unsupported()
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            mp = self.module_path(node) if isinstance(node, ast.Attribute) else None
            if mp is not None:
                self.bind_module(mp[1], mp[0])
                return node
            if self.depends(node):
                return self.fetch_node(node)
            return self.generic(node)
        if isinstance(node, (ast.Compare, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.IfExp, ast.List, ast.Tuple,
                             ast.Set, ast.Dict, ast.JoinedStr, ast.FormattedValue, ast.Slice, ast.keyword)):
            return self.generic(node)
        if isinstance(node, (ast.cmpop, ast.operator, ast.boolop, ast.unaryop, ast.expr_context)):
            return node
        raise Unsupported()

    def own(self, node):
        """The test's own computation, made here with the real modules,
        unless it calls into a module with hidden state (whose state is the
        kernel's)."""
        for n in ast.walk(node):
            if isinstance(n, ast.Call):
                mp = self.module_path(n.func)
                if mp is not None and stateful(".".join(mp[0])):
                    raise Unsupported()
            if isinstance(n, ast.Name) and self.kinds.get(n.id, ("",))[0] == "module":
                self.bind_module(n.id, [self.kinds[n.id][1]])
        return node

    def generic(self, node, skip_func=False):
        for field, value in ast.iter_fields(node):
            if skip_func and field == "func":
                continue
            if isinstance(value, list):
                setattr(node, field, [self.visit(v) if isinstance(v, ast.AST) else v for v in value])
            elif isinstance(value, ast.AST):
                setattr(node, field, self.visit(value))
        return node

    def fetch_value(self, i):
        """_otter_service_fetch: the value of fetch i, from the kernel."""
        res = self.grader.request("eval", self.fetches[i], self.name)
        if res is None:
            raise KernelValueError("the kernel did not answer\n")
        self.output += res.get("out", "")
        if res.get("exc"):
            raise KernelValueError(res["exc"])
        if res.get("unsupported"):
            raise Unsupported()
        try:
            return decode(res.get("value"))
        except (ValueError, TypeError, KeyError):
            self.grader.flag(f"the kernel sent a value no honest kernel sends ({self.name})")
            raise KernelValueError("malformed value\n")


def decode(v, depth=0):
    if depth > 200:
        raise ValueError("too deep")
    if v is None or type(v) in (bool, int, float, str):
        return v
    if type(v) is list:
        return [decode(x, depth + 1) for x in v]
    if type(v) is not dict:
        raise ValueError("not a value")
    t = v["__t"]
    items = v.get("v")
    if t == "tuple":
        return tuple(decode(x, depth + 1) for x in items)
    if t == "set":
        return set(decode(x, depth + 1) for x in items)
    if t == "frozenset":
        return frozenset(decode(x, depth + 1) for x in items)
    if t == "dict":
        return {decode(k, depth + 1): decode(x, depth + 1) for k, x in items}
    if t == "bytes":
        return base64.b64decode(items)
    import numpy as np
    if t in ("ndarray", "npscalar"):
        dtype = np.dtype(v["dtype"])
        if dtype.kind not in "biuf":
            raise ValueError("dtype")
        if t == "npscalar":
            return dtype.type(items)
        shape = [int(s) for s in v["shape"]]
        return np.array(items, dtype=dtype).reshape(shape)
    raise ValueError("unknown tag")


def decoys_of(node):
    """Versions of `assert T` that an honest kernel cannot find true as well
    as T: `assert not (T)`, and for `assert X == c` (c a number or a
    string), the same with other constants."""
    t = node.test
    negated = ast.unparse(ast.fix_missing_locations(ast.Assert(test=ast.UnaryOp(op=ast.Not(), operand=t), msg=None)))
    return [negated] + constant_decoys(node)


def constant_decoys(node):
    t = node.test
    if not (isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq)):
        return []
    for side in ("comparators", "left"):
        c = t.comparators[0] if side == "comparators" else t.left
        value = constant_value(c)
        if type(value) in (int, float, str) and not (isinstance(value, float) and math.isnan(value)):
            out = []
            for k in range(2):
                if isinstance(value, str):
                    alt = value + secrets.choice("abcdefghij") + str(k)
                else:
                    alt = value + (k + 1) * (abs(value) + 1) * 7919
                new = ast.Assert(test=ast.Compare(
                    left=ast.Constant(alt) if side == "left" else t.left, ops=t.ops,
                    comparators=[ast.Constant(alt)] if side == "comparators" else t.comparators), msg=node.msg)
                out.append(ast.unparse(ast.fix_missing_locations(new)))
            return out
    return []


def constant_value(node):
    """The value of a literal number or string (-8 included), else None."""
    if isinstance(node, ast.Constant) or (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
                                          and isinstance(node.operand, ast.Constant)):
        try:
            return ast.literal_eval(node)
        except ValueError:
            return None
    return None


def judge(ex, got, exc):
    """doctest's verdict on one example from its output and exception."""
    checker = doctest.OutputChecker()
    flags = 0
    for flag, on in ex.options.items():
        flags = flags | flag if on else flags & ~flag
    if exc is None:
        if checker.check_output(ex.want, got, flags):
            return True, ""
        return False, ("Expected:\n" + indent(ex.want) if ex.want else "Expected nothing\n") + \
            ("Got:\n" + indent(kernel_text(got, len(ex.want) + 300)) if got else "Got nothing\n")
    if ex.exc_msg is None:
        return False, "Exception raised:\n" + indent(kernel_text(exc))
    if checker.check_output(ex.exc_msg, exc, flags):
        return True, ""
    if flags & doctest.IGNORE_EXCEPTION_DETAIL:
        strip = lambda m: re.sub(r":.*", "", m.split("\n")[0])
        if checker.check_output(strip(ex.exc_msg), strip(exc), flags):
            return True, ""
    return False, "Expected:\n" + indent(ex.exc_msg) + "Got:\n" + indent(kernel_text(exc))


# Sources of hidden test cases sent to the kernel so far: a report must not
# echo them (a kernel can note what it is sent and print it later, during a
# public test whose report the student sees).
WITHHELD = set()


def kernel_text(s, limit=300):
    """Text from the kernel as it may appear in a report (which students may
    see for public tests): bounded, and never holding a hidden test's code."""
    s = str(s)
    for w in WITHHELD:
        if w in s:
            return "(output withheld)\n"
    return s if len(s) <= limit else s[:limit] + "…\n"


def indent(s):
    return "".join("    " + l + "\n" for l in s.rstrip("\n").split("\n")) if s else ""


def safe_parse(source):
    try:
        return ast.parse(source)
    except SyntaxError:
        return ast.Module(body=[], type_ignores=[])


# Said to the kernel before the notebook's first cell: the import system
# looks at the working directory afresh (a warm kernel started before the
# notebook and the assignment's files were there).
KERNEL_JOB = r'''
import importlib as _otter_service_importlib
_otter_service_importlib.invalidate_caches()
del _otter_service_importlib
'''

# What the warm grader writes on its standard output: ready for a job, and
# the job taken.
WARM_READY = "otter-service: warm grader ready"
WARM_GO = "otter-service: grading"


def grading_kernel(root, timeout=600):
    """The notebook's kernel, connected and with otter set up in it."""
    kernel = Kernel(os.path.join(root, "kernel", "kernel.json"), timeout=timeout)
    kernel.execute(KERNEL_INIT, store_history=False)
    return kernel


def grade(root, kernel=None, watch=None):
    """Grades the job in root, in kernel if it is given (a warm grader's,
    made by grading_kernel before the job was there), else in the kernel
    it connects to now."""
    from otter.plugins import PluginCollection
    from otter.run.run_autograder.autograder_config import AutograderConfig
    from otter.execute.preprocessor import GradingPreprocessor
    from otter.test_files import GradingResults

    config_path = os.path.join(root, "source", "otter_config.json")
    config = {}
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    config.update(pdf=False, token=None)
    ag_config = AutograderConfig(config)

    with open(os.path.join(root, "job", "job.json"), encoding="utf-8") as f:
        job = json.load(f)
    nb = nbformat.read(os.path.join(root, "job", job["notebook"]), as_version=4)
    with open(os.path.join(root, "job", "submission_metadata.json"), encoding="utf-8") as f:
        metadata = json.load(f)
    plugins = None
    if ag_config.plugins:
        plugins = PluginCollection(ag_config.plugins, os.path.join(root, "submission", job["notebook"]), metadata)
        nb = plugins.before_execution(nb)
        plugins.run("before_grading", ag_config)

    gp = GradingPreprocessor()
    gp.seed, gp.seed_variable = ag_config.seed, ag_config.seed_variable
    gp.filter_ignored_cells(nb)
    gp.add_seeds(nb)

    tests = {os.path.splitext(os.path.basename(p))[0]: p for p in sorted(glob.glob(os.path.join(root, "source", "tests", "*.py")))}
    if kernel is None:
        kernel = grading_kernel(root)
    kernel.timeout = float(job.get("cell_timeout", 600))
    grader = Grader(kernel)
    results = {}  # test name → TestFile, in the order otter records them
    checked = set()

    def check(question):
        if question == "*":
            for q in tests:
                check(q)
            return
        path = tests.get(question)
        if path is None:
            return  # otter: FileNotFoundError in the notebook's check call; nothing recorded
        checked.add(question)
        tf = grader.run_test(path)
        results[tf.name] = tf  # a key keeps its first place; its last result counts

    kernel.execute(KERNEL_JOB, store_history=False)
    for cell in nb.cells:
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        _, _, reply = kernel.execute(cell.source, user_expressions={"c": "_otter_service_drain()"})
        calls = []
        expr = (reply.get("user_expressions") or {}).get("c") or {}
        text = (expr.get("data") or {}).get("text/plain", "[]") if expr.get("status") == "ok" else "[]"
        try:
            calls = ast.literal_eval(text) if len(text) < 65536 else []
        except (ValueError, SyntaxError):
            calls = []
        if not isinstance(calls, list):
            calls = []
        for q in calls[:1000]:
            if isinstance(q, str):
                check(q)
    for q in tests:
        if q not in checked:
            check(q)

    scores = GradingResults(list(results.values()))
    if plugins is not None:
        plugins.run("after_grading", scores)
    output = scores.to_gradescope_dict(ag_config)
    output["otter_service"] = {"needs_review": grader.review, "requests": grader.requests}
    with open(os.path.join(root, "results", "results.json"), "w", encoding="utf-8") as f:
        json.dump(output, f, indent=1)
    if watch is not None:
        watch.finish()


def warm_up(root):
    """A warm grader's start, before any job is known: the grading's
    imports done, connected to the kernel and otter set up in it."""
    import jupyter_client  # noqa: F401
    import otter.execute.preprocessor  # noqa: F401
    import otter.plugins  # noqa: F401
    import otter.run.run_autograder.autograder_config  # noqa: F401
    import otter.test_files  # noqa: F401
    return grading_kernel(root)


def exit_now(code):
    """Ends the process at once, without the interpreter's teardown (its
    threads, the kernel client's sockets): results.json is written and
    closed by then."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class KernelWatch:
    """The kernel started by warmstart.py is this process's child: when it
    ends, the grading ends at once, as the runner would see a kernel of
    its own exec end. Before the job was taken, that is the spare's
    trouble, not the notebook's; after results.json is written, nothing."""

    def __init__(self, pid):
        import threading
        self.lock = threading.Lock()  # the process ends holding it, if the kernel ends first
        self.took = self.done = False
        self.pid = pid
        threading.Thread(target=self.wait, daemon=True).start()

    def wait(self):
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        with self.lock:
            if self.done:
                return
            print("DeadKernelError: Kernel died while grading" if self.took else "the kernel of the spare ended",
                  file=sys.stderr)
            exit_now(EXIT_KERNEL_ENDED if self.took else EXIT_SPARE_BROKEN)

    def take(self):
        with self.lock:
            self.took = True

    def finish(self):
        with self.lock:
            self.done = True


def main():
    args = sys.argv[1:]
    warm = "--warm" in args
    args = [a for a in args if a != "--warm"]
    watch = None
    if "--kernel-pid" in args:
        i = args.index("--kernel-pid")
        watch = KernelWatch(int(args[i + 1]))
        del args[i:i + 2]
    root = args[0] if args else "/autograder"
    home = os.environ.get("HOME")
    if home == "/tmp/grader":
        os.makedirs(home, mode=0o700, exist_ok=False)  # made before the notebook runs: no one else's
    try:
        kernel = None
        if warm:
            # Started in a spare container, before any job: wait for one.
            kernel = warm_up(root)
            print(WARM_READY, flush=True)
            if sys.stdin.readline() != "go\n":
                exit_now(0)  # the runner let the spare go
            if watch is not None:
                watch.take()
            print(WARM_GO, flush=True)
        grade(root, kernel, watch)
    except KernelDied:
        print("DeadKernelError: Kernel died while grading", file=sys.stderr)
        exit_now(EXIT_KERNEL_DIED)
    exit_now(0)


if __name__ == "__main__":
    main()
