#!/usr/bin/env python3
"""Writes docs/stages.md from the stage kinds' Swift sources (ParamSpec / InputSpec / outputs).

Run: python3 scripts/make_stage_docs.py   (Tests/StudyTests/StageDocsTests.swift checks that
docs/stages.md names every registered kind and every param, so rerun it after changing a kind).
"""
import glob, os, re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def calls(text, name):
    """Argument strings of every `name(...)` call (balanced parentheses, strings respected)."""
    out, i = [], 0
    while True:
        i = text.find(name + "(", i)
        if i < 0:
            return out
        j, depth, in_str = i + len(name) + 1, 1, False
        while j < len(text) and depth:
            c = text[j]
            if in_str:
                if c == "\\": j += 1
                elif c == '"': in_str = False
            elif c == '"': in_str = True
            elif c == "(": depth += 1
            elif c == ")": depth -= 1
            j += 1
        out.append(text[i + len(name) + 1 : j - 1])
        i = j

def split_args(a):
    parts, depth, cur, in_str, k = [], 0, "", False, 0
    while k < len(a):
        c = a[k]
        if in_str:
            cur += c
            if c == "\\": cur += a[k + 1]; k += 1
            elif c == '"': in_str = False
        elif c == '"': in_str = True; cur += c
        elif c in "([": depth += 1; cur += c
        elif c in ")]": depth -= 1; cur += c
        elif c == "," and depth == 0: parts.append(cur.strip()); cur = ""
        else: cur += c
        k += 1
    if cur.strip(): parts.append(cur.strip())
    return parts

KNOWN = {"LoRAConfig().targetModules": "[q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]",
         "LVSOptions.paperEta": "1e-6", "LVSOptions.releaseEta": "1e-4"}

def pretty(v):
    v = re.sub(r"\s+", " ", v)
    for k, rep in KNOWN.items():
        if k in v:
            return rep
    v = re.sub(r"(\w+)\.allCases\.map\(\\\.rawValue\)", r"the \1 cases", v)
    v = re.sub(r"\.(string|int|double|bool|number)\(([^()]*)\)", r"\2", v)
    v = re.sub(r"^\.list\(\.(\w+)\)$", r"list of \1", v)
    v = v.replace(".list(", "").replace(".map(", "").replace(")", "")
    v = re.sub(r"\.(\w+)\.allCases\.map\(\\\.rawValue", r"\1 values", v)
    return v.lstrip(".")

def kind_doc(path):
    text = open(path).read()
    m = re.search(r'var name: String \{ "([^"]+)" \}', text)
    if not m:
        return None
    name = m.group(1)
    summary = ""
    d = re.search(r"((?:\s*///[^\n]*\n)+)\s*public struct \w+Kind", text)
    if d:
        lines = [l.strip()[3:].strip() for l in d.group(1).strip().splitlines()]
        summary = " ".join(lines)
    params = []
    for a in calls(text, "ParamSpec"):
        p = split_args(a)
        if not p or not p[0].startswith('"'):
            continue
        pname, ptype = p[0].strip('"'), pretty(p[1]).lstrip(".") if len(p) > 1 else ""
        rest = {}
        for x in p[2:]:
            k, _, v = x.partition(":")
            rest[k.strip()] = v.strip()
        default = pretty(rest.get("default", "")) if "default" in rest else ("**required**" if rest.get("required") == "true" else "")
        doc = rest.get("doc", "").strip('"')
        if "choices" in rest:
            doc = (doc + "; " if doc else "") + "one of " + pretty(rest["choices"])
        params.append((pname, ptype, default, doc))
    inputs = []
    for a in calls(text, "InputSpec"):
        p = split_args(a)
        if p and p[0].startswith('"'):
            opts = " ".join(x for x in p[1:])
            inputs.append((p[0].strip('"'), "optional" if "required: false" in opts else "required",
                           "many" if "multiple: true" in opts else "one",
                           re.search(r'doc: "([^"]*)"', opts).group(1) if 'doc: "' in opts else ""))
    if not inputs and "InputsDeclaration" not in text:
        inputs = None
    outs = re.search(r"\.fixed\((\[[^\]]*\])", text)
    outputs = re.findall(r'"([^"]+)"', outs.group(1)) if outs else []
    return name, summary, params, inputs, outputs

def main():
    kinds = [k for k in (kind_doc(p) for p in sorted(glob.glob(os.path.join(ROOT, "Sources/Study/Stages/*Kind.swift")))) if k]
    md = ["# Stage kinds", "",
          "Every stage kind of the study, generated from the kinds' params schemas by",
          "`scripts/make_stage_docs.py` (rerun it after changing a kind). Every kind has version `1`.",
          "Params are validated before anything runs; unknown names, wrong types and missing required",
          "params are spec errors naming `file:line:column`. Built-in kinds (`shell`, `test.*`) are in",
          "[pipelines.md](pipelines.md); row formats, judges and conventions in [study-stages.md](study-stages.md).", ""]
    md += ["| kind | summary |", "|---|---|"]
    for name, summary, *_ in kinds:
        md.append(f"| [`{name}`](#{name}) | {summary.split('. ')[0].rstrip('.')}. |")
    for name, summary, params, inputs, outputs in kinds:
        md += ["", f"## {name}", "", summary, ""]
        if params:
            md += ["| param | type | default | notes |", "|---|---|---|---|"]
            for p in params:
                md.append("| `%s` | %s | %s | %s |" % (p[0], p[1], ("`%s`" % p[2]) if p[2] and p[2] != "**required**" else p[2], p[3].replace("|", "\\|")))
        md.append("")
        if inputs is None:
            md.append("Inputs: any names (see the summary).")
        elif inputs:
            md.append("Inputs: " + "; ".join(f"`{n}` ({r}, {m}{': ' + d if d else ''})" for n, r, m, d in inputs) + ".")
        else:
            md.append("Inputs: none.")
        if outputs:
            md.append("")
            md.append("Outputs: " + ", ".join(f"`{o}`" for o in outputs) + ".")
    with open(os.path.join(ROOT, "docs", "stages.md"), "w") as f:
        f.write("\n".join(md) + "\n")

if __name__ == "__main__":
    main()
