//! The last phase of reading a pipeline file: check the document's structure, expand each
//! stage declaration, read typed parameters through the stage kind, bind inputs to stages and
//! put the stages in dependency order.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::error::{SpecError, SpecErrors};
use super::matrix::{self, AxisValue, MatrixLookup};
use super::resources::Resources;
use super::vars::{self, VarLookup, join};
use super::yaml::{self, Node, Span, Value};
use super::{DeviceChoice, Pipeline, StageSpec};
use crate::dag::StageGraph;
use crate::stage::{Arity, Registry, StageKind};
use crate::suggest::nearest;

/// The keys of a pipeline file's top level.
pub(super) const TOP_LEVEL: &[&str] = &[
    "name",
    "description",
    "seed",
    "vars",
    "data_roots",
    "stages",
];
const STAGE_KEYS: &[&str] = &[
    "kind",
    "params",
    "inputs",
    "matrix",
    "seed",
    "device",
    "threads",
    "resources",
    "description",
];

/// A stage after expansion, before its inputs are bound.
struct Expanded<'r> {
    spec: StageSpec,
    kind: &'r dyn StageKind,
    /// The input references as written.
    refs: Vec<InputRef>,
}

/// One `inputs:` entry: a slot and the stage names it references, with locations.
struct InputRef {
    slot: String,
    span: Span,
    names: Vec<(String, Span)>,
}

/// Input slot to upstream stage indices.
type Bound = BTreeMap<String, Vec<usize>>;

/// Checks the tree of a pipeline file and builds the [`Pipeline`].
pub fn resolve(root: &Node, file: &Path, registry: &Registry) -> Result<Pipeline, SpecErrors> {
    let entries = top_level(root)?;
    let vars = vars::resolve_vars(root.get("vars"))?;
    let mut lookup = VarLookup { vars: &vars };
    let name = pipeline_name(root, file, &mut lookup)?;
    let description = optional_text(root.get("description"), "description", &mut lookup)?;
    let seed = match root.get("seed") {
        Some(node) => read_typed::<u64>(node, "seed", &mut lookup)?,
        None => 0,
    };
    let stages_node = entries
        .iter()
        .find(|(k, _)| k.as_str() == Some("stages"))
        .map(|(_, v)| v)
        .ok_or_else(|| {
            SpecError::new("the pipeline has no `stages`", Some(&root.span), "").note(
                "a pipeline file is a mapping with a `stages:` mapping of stage names to stages",
            )
        })?;
    let Some(stage_entries) = stages_node.as_map().filter(|e| !e.is_empty()) else {
        return Err(SpecError::new(
            format!(
                "`stages` must be a non-empty mapping of stage names to stages, found {}",
                match stages_node.as_map() {
                    Some(_) => "an empty mapping",
                    None => stages_node.describe(),
                }
            ),
            Some(&stages_node.span),
            "stages",
        )
        .into());
    };

    let mut errors = Vec::new();
    let mut expanded = Vec::new();
    for (key, node) in stage_entries {
        match expand(key, node, &vars, seed, registry) {
            Ok(list) => expanded.extend(list),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(SpecErrors(errors));
    }
    let upstream = bind_inputs(&expanded)?;
    let stages = order(expanded, upstream)?;
    let data_roots = match root.get("data_roots") {
        Some(node) => read_typed::<Vec<std::path::PathBuf>>(node, "data_roots", &mut lookup)?,
        None => Vec::new(),
    };
    Ok(Pipeline {
        name,
        file: file.to_path_buf(),
        description,
        stages,
        overrides: Vec::new(),
        data_roots,
    })
}

fn top_level(root: &Node) -> Result<&[(Node, Node)], SpecError> {
    let Some(entries) = root.as_map() else {
        return Err(SpecError::new(
            format!(
                "a pipeline file is a mapping with `stages:`, found {}",
                root.describe()
            ),
            Some(&root.span),
            "",
        ));
    };
    for (key, _) in entries {
        let k = key.as_str().unwrap_or_default();
        if !TOP_LEVEL.contains(&k) {
            return Err(
                SpecError::new(format!("unknown key `{k}`"), Some(&key.span), k)
                    .expected_one_of(TOP_LEVEL.iter().copied())
                    .suggest(nearest(k, TOP_LEVEL.iter().copied())),
            );
        }
    }
    Ok(entries)
}

fn pipeline_name(
    root: &Node,
    file: &Path,
    lookup: &mut VarLookup<'_>,
) -> Result<String, SpecError> {
    let name = match optional_text(root.get("name"), "name", lookup)? {
        Some(name) => name,
        None => file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    if !valid_name(&name) {
        let span = root.get("name").map(|n| &n.span);
        return Err(
            SpecError::new(format!("`{name}` cannot be a pipeline name"), span, "name")
                .note("use letters, digits and `_-.`; the name is a folder under outputs/"),
        );
    }
    Ok(name)
}

/// The longest stage, pipeline or matrix name: each is a folder name (at most 255 bytes on
/// Linux file systems), and a stage's staging folder adds its own suffix.
pub(crate) const MAX_NAME: usize = 100;

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

fn optional_text(
    node: Option<&Node>,
    path: &str,
    lookup: &mut VarLookup<'_>,
) -> Result<Option<String>, SpecError> {
    node.map(|n| read_typed::<String>(n, path, lookup))
        .transpose()
}

fn read_typed<T: serde::de::DeserializeOwned>(
    node: &Node,
    path: &str,
    lookup: &mut dyn vars::Lookup,
) -> Result<T, SpecError> {
    let mut node = node.clone();
    vars::substitute(&mut node, path, lookup)?;
    yaml::from_node(&node).map_err(|e| SpecError::from_de(e, path))
}

/// Expands one stage declaration into one stage per matrix combination.
fn expand<'r>(
    key: &Node,
    node: &Node,
    vars: &BTreeMap<String, Node>,
    default_seed: u64,
    registry: &'r Registry,
) -> Result<Vec<Expanded<'r>>, SpecError> {
    let base = key.as_str().unwrap_or_default().to_owned();
    let path = format!("stages.{base}");
    if !valid_name(&base) || base.contains('.') {
        return Err(SpecError::new(
            format!("`{base}` cannot be a stage name"),
            Some(&key.span),
            path,
        )
        .note(format!(
            "use at most {MAX_NAME} letters, digits, `_` and `-`; the name is a folder under \
             outputs/"
        )));
    }
    let Some(entries) = node.as_map() else {
        return Err(SpecError::new(
            format!(
                "a stage is a mapping with at least `kind:`, found {}",
                node.describe()
            ),
            Some(&node.span),
            path,
        ));
    };
    for (k, _) in entries {
        let name = k.as_str().unwrap_or_default();
        if !STAGE_KEYS.contains(&name) {
            return Err(SpecError::new(
                format!("unknown key `{name}`"),
                Some(&k.span),
                join(&path, name),
            )
            .expected_one_of(STAGE_KEYS.iter().copied())
            .suggest(nearest(name, STAGE_KEYS.iter().copied())));
        }
    }
    let kind = stage_kind(node, &path, vars, registry)?;
    let axes = match node.get("matrix") {
        Some(m) => {
            let mut m = m.clone();
            vars::substitute(&mut m, &join(&path, "matrix"), &mut VarLookup { vars })?;
            matrix::axes(&m, &base)?
        }
        None => Vec::new(),
    };
    let has_matrix = !axes.is_empty();
    let count = axes
        .iter()
        .try_fold(1usize, |n, a| n.checked_mul(a.values.len()))
        .filter(|&n| n <= matrix::MAX_STAGES);
    if count.is_none() {
        let sizes: Vec<String> = axes
            .iter()
            .map(|a| format!("{} ({})", a.name, a.values.len()))
            .collect();
        let at = node.get("matrix").map(|m| &m.span);
        return Err(SpecError::new(
            format!(
                "the matrix expands to more than {} stages: {}",
                matrix::MAX_STAGES,
                sizes.join(" x ")
            ),
            at,
            join(&path, "matrix"),
        )
        .note("split the sweep into several declarations or pipelines"));
    }
    matrix::combinations(&axes)
        .into_iter()
        .map(|combo| {
            let values = combo.iter().map(|(a, v)| (a.as_str(), v)).collect();
            let mut lookup = MatrixLookup {
                vars: VarLookup { vars },
                values,
                has_matrix,
                stage: &base,
            };
            one_stage(&base, key, node, kind, &combo, &mut lookup, default_seed)
        })
        .collect()
}

fn stage_kind<'r>(
    node: &Node,
    path: &str,
    vars: &BTreeMap<String, Node>,
    registry: &'r Registry,
) -> Result<&'r dyn StageKind, SpecError> {
    let Some(kind_node) = node.get("kind") else {
        return Err(
            SpecError::new("the stage has no `kind`", Some(&node.span), path)
                .expected_one_of(registry.names()),
        );
    };
    let kind_path = join(path, "kind");
    let name: String = read_typed(kind_node, &kind_path, &mut VarLookup { vars })?;
    registry.get(&name).ok_or_else(|| {
        SpecError::new(
            format!("unknown stage kind `{name}`"),
            Some(&kind_node.span),
            kind_path,
        )
        .expected_one_of(registry.names())
        .suggest(nearest(&name, registry.names()))
    })
}

fn one_stage<'r>(
    base: &str,
    key: &Node,
    node: &Node,
    kind: &'r dyn StageKind,
    combo: &[(String, AxisValue)],
    lookup: &mut MatrixLookup<'_>,
    default_seed: u64,
) -> Result<Expanded<'r>, SpecError> {
    let name = matrix::stage_name(base, combo);
    let path = format!("stages.{base}");
    let in_matrix = |e: SpecError| {
        if combo.is_empty() {
            e
        } else {
            e.note(format!("in matrix stage `{name}`"))
        }
    };
    let params_path = join(&path, "params");
    let mut params = node
        .get("params")
        .cloned()
        .unwrap_or_else(|| empty_map(&node.span));
    if matches!(params.value, Value::Null) {
        params = empty_map(&params.span);
    }
    vars::substitute(&mut params, &params_path, lookup).map_err(in_matrix)?;
    let canonical = kind
        .canonicalize_yaml(&params)
        .map_err(|e| in_matrix(SpecError::from_de(e, &params_path)))?;
    let seed = match node.get("seed") {
        Some(n) => read_typed::<u64>(n, &join(&path, "seed"), lookup).map_err(in_matrix)?,
        None => default_seed,
    };
    let device = match node.get("device") {
        Some(n) => {
            read_typed::<DeviceChoice>(n, &join(&path, "device"), lookup).map_err(in_matrix)?
        }
        None => DeviceChoice::Auto,
    };
    let threads = match node.get("threads") {
        Some(n) => Some(positive(n, &join(&path, "threads"), lookup).map_err(in_matrix)?),
        None => None,
    };
    let resources = match node.get("resources") {
        Some(n) => {
            super::resources::read(n, &join(&path, "resources"), lookup).map_err(in_matrix)?
        }
        None => Resources::default(),
    };
    check_threads_fit(node, threads, &resources, &path).map_err(in_matrix)?;
    let description = match node.get("description") {
        Some(n) => Some(read_typed::<String>(
            n,
            &join(&path, "description"),
            lookup,
        )?),
        None => None,
    };
    let refs = input_refs(node.get("inputs"), &path, lookup).map_err(in_matrix)?;
    let matrix = combo
        .iter()
        .map(|(a, v)| (a.clone(), v.label.clone()))
        .collect();
    let spec = StageSpec {
        name,
        base: base.to_owned(),
        matrix,
        kind: kind.name().to_owned(),
        version: kind.version(),
        params: canonical,
        inputs: BTreeMap::new(),
        seed,
        device,
        threads,
        resources,
        description,
        span: key.span.clone(),
    };
    Ok(Expanded { spec, kind, refs })
}

/// A stage cannot use more intra-op threads than the CPUs it asks a scheduler for.
fn check_threads_fit(
    node: &Node,
    threads: Option<usize>,
    resources: &Resources,
    path: &str,
) -> Result<(), SpecError> {
    let (Some(threads), Some(cpus)) = (threads, resources.cpus) else {
        return Ok(());
    };
    if threads <= cpus {
        return Ok(());
    }
    let span = node.get("threads").map(|n| &n.span);
    Err(SpecError::new(
        format!("the stage asks for {threads} threads and `resources.cpus: {cpus}`"),
        span,
        join(path, "threads"),
    )
    .note("a job has only the CPUs it asks for; raise `resources.cpus` or lower `threads`"))
}

fn empty_map(span: &Span) -> Node {
    Node::new(Value::Map(Vec::new()), span.clone())
}

fn positive(node: &Node, path: &str, lookup: &mut dyn vars::Lookup) -> Result<usize, SpecError> {
    let n: usize = read_typed(node, path, lookup)?;
    if n == 0 {
        return Err(SpecError::new(
            "expected a positive integer, found 0",
            Some(&node.span),
            path,
        ));
    }
    Ok(n)
}

fn input_refs(
    node: Option<&Node>,
    path: &str,
    lookup: &mut dyn vars::Lookup,
) -> Result<Vec<InputRef>, SpecError> {
    let Some(node) = node else {
        return Ok(Vec::new());
    };
    let path = join(path, "inputs");
    let mut node = node.clone();
    vars::substitute(&mut node, &path, lookup)?;
    let entries = match &node.value {
        Value::Map(entries) => entries,
        Value::Null => return Ok(Vec::new()),
        _ => {
            return Err(SpecError::new(
                format!(
                    "`inputs` maps input names to stage names, found {}",
                    node.describe()
                ),
                Some(&node.span),
                path,
            )
            .note("for example: `inputs: {data: mnist}` or `inputs: {runs: [train_a, train_b]}`"));
        }
    };
    entries
        .iter()
        .map(|(k, v)| {
            let slot = k.as_str().unwrap_or_default().to_owned();
            let slot_path = join(&path, &slot);
            let names = match &v.value {
                Value::Scalar(s) => vec![(s.text.clone(), v.span.clone())],
                Value::Seq(items) => items
                    .iter()
                    .map(|item| match item.as_str() {
                        Some(t) => Ok((t.to_owned(), item.span.clone())),
                        None => Err(SpecError::new(
                            format!("expected a stage name, found {}", item.describe()),
                            Some(&item.span),
                            slot_path.clone(),
                        )),
                    })
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err(SpecError::new(
                        format!(
                            "expected a stage name or a list of them, found {}",
                            v.describe()
                        ),
                        Some(&v.span),
                        slot_path,
                    ));
                }
            };
            Ok(InputRef {
                slot,
                span: k.span.clone(),
                names,
            })
        })
        .collect()
}

/// Binds every input reference to stage indices and checks slots and arity.
fn bind_inputs(expanded: &[Expanded<'_>]) -> Result<Vec<Bound>, SpecErrors> {
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    let mut by_base: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, e) in expanded.iter().enumerate() {
        by_name.insert(&e.spec.name, i);
        by_base.entry(&e.spec.base).or_default().push(i);
    }
    let mut known: Vec<&str> = by_base.keys().copied().collect();
    known.sort_unstable();
    let mut errors = Vec::new();
    let mut all = Vec::with_capacity(expanded.len());
    for e in expanded {
        match bind_stage(e, &by_name, &by_base, &known) {
            Ok(bound) => all.push(bound),
            Err(err) => {
                if !errors.contains(&err) {
                    errors.push(err);
                }
                all.push(BTreeMap::new());
            }
        }
    }
    if errors.is_empty() {
        Ok(all)
    } else {
        Err(SpecErrors(errors))
    }
}

fn bind_stage(
    e: &Expanded<'_>,
    by_name: &HashMap<&str, usize>,
    by_base: &HashMap<&str, Vec<usize>>,
    known: &[&str],
) -> Result<Bound, SpecError> {
    let path = format!("stages.{}.inputs", e.spec.base);
    let slots = e.kind.inputs();
    let mut bound = BTreeMap::new();
    for InputRef {
        slot,
        span: slot_span,
        names,
    } in &e.refs
    {
        let Some(decl) = slots.iter().find(|s| s.name == slot) else {
            let err = SpecError::new(
                format!("stage kind `{}` has no input `{slot}`", e.kind.name()),
                Some(slot_span),
                join(&path, slot),
            );
            return Err(if slots.is_empty() {
                err.note(format!("`{}` takes no inputs", e.kind.name()))
            } else {
                err.expected_one_of(slots.iter().map(|s| s.name))
                    .suggest(nearest(slot, slots.iter().map(|s| s.name)))
            });
        };
        let mut indices = Vec::new();
        for (name, span) in names {
            let found = by_name
                .get(name.as_str())
                .map(|&i| vec![i])
                .or_else(|| by_base.get(name.as_str()).cloned());
            let Some(found) = found else {
                return Err(SpecError::new(
                    format!("input `{slot}` names no stage `{name}`"),
                    Some(span),
                    join(&path, slot),
                )
                .suggest(nearest(name, known.iter().copied()))
                .note(format!("stages: {}", known.join(", "))));
            };
            if decl.arity != Arity::Many && found.len() > 1 {
                return Err(SpecError::new(
                    format!(
                        "input `{slot}` takes one stage, and `{name}` is a matrix of {} stages",
                        found.len()
                    ),
                    Some(span),
                    join(&path, slot),
                )
                .note(
                    "name one member, e.g. `name[axis=value]`, or use a matrix with the same axis",
                ));
            }
            indices.extend(found);
        }
        if decl.arity != Arity::Many && indices.len() > 1 {
            return Err(SpecError::new(
                format!(
                    "input `{slot}` takes one stage, {} are given",
                    indices.len()
                ),
                Some(slot_span),
                join(&path, slot),
            ));
        }
        bound.insert(slot.clone(), indices);
    }
    for slot in slots.iter().filter(|s| s.arity != Arity::Optional) {
        if !bound.contains_key(slot.name) {
            return Err(SpecError::new(
                format!(
                    "stage `{}` lacks input `{}` ({})",
                    e.spec.name, slot.name, slot.doc
                ),
                Some(&e.spec.span),
                path.clone(),
            ));
        }
    }
    Ok(bound)
}

/// Orders the stages so that inputs come first, remapping input indices.
fn order(expanded: Vec<Expanded<'_>>, upstream: Vec<Bound>) -> Result<Vec<StageSpec>, SpecError> {
    let edges: Vec<Vec<usize>> = upstream
        .iter()
        .map(|m| m.values().flatten().copied().collect())
        .collect();
    let graph = StageGraph::new(&edges);
    let order = graph.order().map_err(|cycle| {
        let names: Vec<&str> = cycle
            .iter()
            .map(|&i| expanded[i].spec.name.as_str())
            .collect();
        let first = &expanded[cycle[0]].spec;
        SpecError::new(
            "the stages' inputs form a cycle",
            Some(&first.span),
            format!("stages.{}", first.base),
        )
        .note(format!(
            "the cycle: {} (each stage is an input of the next)",
            names.join(" -> ")
        ))
    })?;
    let mut position = vec![0; order.len()];
    for (pos, &i) in order.iter().enumerate() {
        position[i] = pos;
    }
    let mut slots: Vec<Option<(StageSpec, Bound)>> = expanded
        .into_iter()
        .zip(upstream)
        .map(|(e, u)| Some((e.spec, u)))
        .collect();
    let mut stages = Vec::with_capacity(order.len());
    for &i in &order {
        if let Some((mut spec, inputs)) = slots[i].take() {
            spec.inputs = inputs
                .into_iter()
                .map(|(slot, idx)| (slot, idx.into_iter().map(|j| position[j]).collect()))
                .collect();
            stages.push(spec);
        }
    }
    Ok(stages)
}
