//! Every kind of mistake in a pipeline file gets a message that names the place and the key,
//! says what was expected, and suggests a fix for a typo.

mod common;

use common::{parse, parse_err};

const GOOD: &str = "\
vars:
  greeting: hello
  times: 2
stages:
  a:
    kind: write
    params:
      text: ${greeting}
      repeat: ${times}
  b:
    kind: write
    params:
      text: world
  both:
    kind: join
    inputs: {parts: [a, b]}
";

#[test]
fn a_good_file_expands_and_orders_stages() {
    let p = parse(GOOD, &[]).unwrap();
    let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "both"]);
    assert_eq!(p.stages[0].params["text"], "hello");
    assert_eq!(p.stages[0].params["repeat"], 2);
    assert_eq!(
        p.stages[0].params["count_file"],
        serde_json::Value::Null,
        "defaults are filled in"
    );
    assert_eq!(p.name, "test");
}

#[test]
fn unknown_key_in_params() {
    let msg = parse_err(
        "stages:\n  a:\n    kind: write\n    params: {text: x, repaet: 2}\n",
        &[],
    );
    assert!(msg.contains("unknown key `repaet`"), "{msg}");
    assert!(msg.contains("stages.a.params.repaet"), "{msg}");
    assert!(msg.contains("test.yaml:4:23"), "{msg}");
    assert!(msg.contains("did you mean `repeat`?"), "{msg}");
}

#[test]
fn unknown_key_in_a_stage() {
    let msg = parse_err(
        "stages:\n  a:\n    kind: write\n    parmas: {text: x}\n",
        &[],
    );
    assert!(msg.contains("unknown key `parmas`"), "{msg}");
    assert!(msg.contains("did you mean `params`?"), "{msg}");
    assert!(msg.contains("test.yaml:4:5"), "{msg}");
}

#[test]
fn unknown_top_level_key() {
    let msg = parse_err(
        "varz: {}\nstages:\n  a: {kind: write, params: {text: x}}\n",
        &[],
    );
    assert!(
        msg.contains("unknown key `varz`") && msg.contains("did you mean `vars`?"),
        "{msg}"
    );
}

#[test]
fn wrong_type() {
    let msg = parse_err(
        "stages:\n  a:\n    kind: write\n    params: {text: x, repeat: twice}\n",
        &[],
    );
    assert!(
        msg.contains("expected a non-negative integer, found `twice`"),
        "{msg}"
    );
    assert!(msg.contains("stages.a.params.repeat"), "{msg}");
    assert!(msg.contains("test.yaml:4:31"), "{msg}");
}

#[test]
fn a_range_check_of_the_kind_is_located() {
    let msg = parse_err(
        "stages:\n  a:\n    kind: write\n    params: {text: x, repeat: 5000}\n",
        &[],
    );
    assert!(
        msg.contains("at most 1000") && msg.contains("stages.a.params.repeat"),
        "{msg}"
    );
    assert!(msg.contains("test.yaml:4:31"), "{msg}");
}

#[test]
fn unknown_stage_kind() {
    let msg = parse_err("stages:\n  a:\n    kind: wrte\n", &[]);
    assert!(msg.contains("unknown stage kind `wrte`"), "{msg}");
    assert!(msg.contains("did you mean `write`?"), "{msg}");
    assert!(
        msg.contains("`fail`, `join`, `length`, `seeded`, `threads`, `write`"),
        "{msg}"
    );
    assert!(msg.contains("test.yaml:3:11"), "{msg}");
}

#[test]
fn input_naming_no_stage() {
    let msg = parse_err(
        "stages:\n  alpha: {kind: write, params: {text: x}}\n  j:\n    kind: join\n    inputs: {parts: [alpah]}\n",
        &[],
    );
    assert!(
        msg.contains("input `parts` names no stage `alpah`"),
        "{msg}"
    );
    assert!(msg.contains("did you mean `alpha`?"), "{msg}");
    assert!(msg.contains("test.yaml:5:22"), "{msg}");
}

#[test]
fn unknown_input_slot() {
    let msg = parse_err(
        "stages:\n  a: {kind: write, params: {text: x}}\n  j:\n    kind: join\n    inputs: {prts: a}\n",
        &[],
    );
    assert!(
        msg.contains("has no input `prts`") && msg.contains("did you mean `parts`?"),
        "{msg}"
    );
}

#[test]
fn missing_required_input() {
    let msg = parse_err("stages:\n  n: {kind: length}\n", &[]);
    assert!(msg.contains("lacks input `data`"), "{msg}");
}

#[test]
fn cycle_is_printed() {
    let msg = parse_err(
        "stages:\n  a: {kind: length, inputs: {data: c}}\n  b: {kind: length, inputs: {data: a}}\n  c: {kind: length, inputs: {data: b}}\n",
        &[],
    );
    assert!(msg.contains("form a cycle"), "{msg}");
    assert!(msg.contains("a -> b -> c -> a"), "{msg}");
}

#[test]
fn duplicate_stage_name() {
    let msg = parse_err(
        "stages:\n  a: {kind: write, params: {text: x}}\n  a: {kind: write, params: {text: y}}\n",
        &[],
    );
    assert!(
        msg.contains("duplicate key `a`") && msg.contains("line 2"),
        "{msg}"
    );
    assert!(msg.contains("test.yaml:3:3"), "{msg}");
}

#[test]
fn undefined_variable() {
    let msg = parse_err(
        "vars: {greeting: hi}\nstages:\n  a: {kind: write, params: {text: '${greting} there'}}\n",
        &[],
    );
    assert!(msg.contains("undefined variable `greting`"), "{msg}");
    assert!(msg.contains("did you mean `greeting`?"), "{msg}");
    assert!(msg.contains("stages.a.params.text"), "{msg}");
    assert!(msg.contains("test.yaml:3:35"), "{msg}");
}

#[test]
fn variable_cycle() {
    let msg = parse_err(
        "vars: {x: '${y}', y: '${x}'}\nstages:\n  a: {kind: write, params: {text: '${x}'}}\n",
        &[],
    );
    assert!(
        msg.contains("cycle") && msg.contains("x -> y -> x"),
        "{msg}"
    );
}

#[test]
fn override_naming_a_missing_key() {
    let msg = parse_err(GOOD, &["greting=hi"]);
    assert!(
        msg.contains("names no variable, stage or top-level key `greting`"),
        "{msg}"
    );
    assert!(msg.contains("did you mean `greeting`?"), "{msg}");
    assert!(msg.contains("--set greting=hi"), "{msg}");
    let msg = parse_err(GOOD, &["stages.a.parms.text=x"]);
    assert!(
        msg.contains("names key `parms`, which does not exist in `stages.a`"),
        "{msg}"
    );
    assert!(msg.contains("did you mean `params`?"), "{msg}");
}

#[test]
fn override_of_an_unknown_parameter_is_caught_by_the_kind() {
    let msg = parse_err(GOOD, &["b.params.repet=3"]);
    assert!(
        msg.contains("unknown key `repet`") && msg.contains("did you mean `repeat`?"),
        "{msg}"
    );
    assert!(msg.contains("--set b.params.repet=3"), "{msg}");
}

#[test]
fn overrides_change_variables_and_parameters() {
    let p = parse(
        GOOD,
        &["times=3", "b.params.repeat=4", "stages.b.params.text=moon"],
    )
    .unwrap();
    assert_eq!(p.stages[0].params["repeat"], 3);
    assert_eq!(p.stages[1].params["repeat"], 4);
    assert_eq!(p.stages[1].params["text"], "moon");
    let msg = parse_err(GOOD, &["times=many"]);
    assert!(
        msg.contains("expected a non-negative integer, found `many`"),
        "{msg}"
    );
}

#[test]
fn matrix_names_are_stable_when_values_are_reordered() {
    let a = parse("stages:\n  w:\n    kind: write\n    matrix: {n: [1, 2], t: [x, y]}\n    params: {text: '${matrix.t}', repeat: '${matrix.n}'}\n", &[]).unwrap();
    let b = parse("stages:\n  w:\n    kind: write\n    matrix: {n: [2, 1], t: [y, x]}\n    params: {text: '${matrix.t}', repeat: '${matrix.n}'}\n", &[]).unwrap();
    let mut na: Vec<(String, serde_json::Value)> = a
        .stages
        .iter()
        .map(|s| (s.name.clone(), s.params.clone()))
        .collect();
    let mut nb: Vec<(String, serde_json::Value)> = b
        .stages
        .iter()
        .map(|s| (s.name.clone(), s.params.clone()))
        .collect();
    na.sort_by(|x, y| x.0.cmp(&y.0));
    nb.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(na, nb);
    assert_eq!(na[0].0, "w[n=1,t=x]");
    assert_eq!(a.stages[0].folder(), std::path::PathBuf::from("w/n=1/t=x"));
    assert_eq!(
        a.stages
            .iter()
            .find(|s| s.name == "w[n=2,t=y]")
            .unwrap()
            .params["repeat"],
        2
    );
}

#[test]
fn matrix_members_can_be_inputs_one_by_one_or_as_a_group() {
    let text = "stages:\n  w:\n    kind: write\n    matrix: {t: [x, y]}\n    params: {text: '${matrix.t}'}\n  l:\n    kind: length\n    matrix: {t: [x, y]}\n    inputs: {data: 'w[t=${matrix.t}]'}\n  all: {kind: join, inputs: {parts: w}}\n";
    let p = parse(text, &[]).unwrap();
    let l = &p.stages[p.index_of("l[t=y]").unwrap()];
    assert_eq!(p.stages[l.inputs["data"][0]].name, "w[t=y]");
    let all = &p.stages[p.index_of("all").unwrap()];
    assert_eq!(all.inputs["parts"].len(), 2);
    let msg = parse_err(
        "stages:\n  w:\n    kind: write\n    matrix: {t: [x, y]}\n    params: {text: a}\n  l: {kind: length, inputs: {data: w}}\n",
        &[],
    );
    assert!(
        msg.contains("takes one stage, and `w` is a matrix of 2 stages"),
        "{msg}"
    );
}

#[test]
fn a_matrix_reference_to_a_missing_axis() {
    let msg = parse_err(
        "stages:\n  w:\n    kind: write\n    matrix: {text: [x]}\n    params: {text: '${matrix.txt}'}\n",
        &[],
    );
    assert!(
        msg.contains("no matrix axis `txt`") && msg.contains("did you mean `matrix.text`?"),
        "{msg}"
    );
}

#[test]
fn matrix_values_of_any_shape_through_labels() {
    let p = parse(
        "stages:\n  w:\n    kind: write\n    matrix:\n      cfg: {small: {t: a, r: 1}, big: {t: b, r: 3}}\n    params: {text: '${matrix.cfg}'}\n",
        &[],
    );
    let msg = p.err().unwrap().render();
    assert!(msg.contains("expected a string, found a mapping"), "{msg}");
    let p = parse("vars: {texts: [a, b]}\nstages:\n  w:\n    kind: write\n    matrix: {t: '${texts}'}\n    params: {text: '${matrix.t}'}\n", &[]).unwrap();
    assert_eq!(p.stages.len(), 2, "a matrix axis can come from a variable");
}

#[test]
fn error_rendering_shows_the_line_and_a_caret() {
    let msg = parse_err(
        "stages:\n  a:\n    kind: write\n    params: {text: x, repaet: 2}\n",
        &[],
    );
    let expected = " --> test.yaml:4:23\n  |\n4 |     params: {text: x, repaet: 2}\n  |                       ^^^^^^\n";
    assert!(msg.contains(expected), "{msg}");
}

#[test]
fn an_unquoted_reference_in_a_flow_mapping_gets_a_hint() {
    let msg = parse_err(
        "vars: {t: x}\nstages:\n  a: {kind: write, params: {text: ${t}}}\n",
        &[],
    );
    assert!(msg.contains("quote"), "{msg}");
}

#[test]
fn overrides_may_add_keys_a_file_can_leave_out() {
    let p = parse(GOOD, &["seed=7", "stages.b.seed=3", "b.threads=2"]).unwrap();
    assert_eq!(p.stages[0].seed, 7);
    assert_eq!(p.stages[1].seed, 3);
    assert_eq!(p.stages[1].threads, Some(2));
    let msg = parse_err(GOOD, &["b.kinds=write"]);
    assert!(
        msg.contains("does not exist") && msg.contains("did you mean `kind`?"),
        "{msg}"
    );
}

#[test]
fn references_reach_into_mappings_with_dots() {
    let text = "vars:\n  cfg: {text: deep, times: 3}\nstages:\n  w:\n    kind: write\n    matrix:\n      s:\n        a: {t: x, r: 2}\n        b: {t: y, r: 5}\n    params: {text: '${matrix.s.t}-${cfg.text}', repeat: '${matrix.s.r}'}\n";
    let p = parse(text, &[]).unwrap();
    let b = &p.stages[p.index_of("w[s=b]").unwrap()];
    assert_eq!(b.params["text"], "y-deep");
    assert_eq!(b.params["repeat"], 5);
    let msg = parse_err(&text.replace("matrix.s.r", "matrix.s.rr"), &[]);
    assert!(
        msg.contains("has no `rr`") && msg.contains("did you mean `r`?"),
        "{msg}"
    );
}

#[test]
fn a_matrix_of_too_many_stages_is_refused_before_expanding() {
    let axes: Vec<String> = (0..10)
        .map(|i| format!("a{i}: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"))
        .collect();
    let text = format!(
        "stages:\n  a:\n    kind: write\n    matrix: {{{}}}\n    params: {{text: x}}\n",
        axes.join(", ")
    );
    let msg = parse_err(&text, &[]);
    assert!(msg.contains("expands to more than 100000 stages"), "{msg}");
    assert!(msg.contains("a0 (10) x a1 (10)"), "{msg}");
    assert!(msg.contains("stages.a.matrix"), "{msg}");
    assert!(msg.contains("test.yaml:4:13"), "{msg}");
}

#[test]
fn a_snippet_of_a_very_long_line_shows_a_window_around_the_error() {
    let text = format!("stages: {}{{a: 1}}]\n", "[".repeat(5000));
    let msg = parse_err(&text, &[]);
    let longest = msg.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 200, "a line of {longest} characters:\n{msg}");
    assert!(msg.contains("..."), "{msg}");
}

const WITH_RESOURCES: &str = "\
vars:
  hours: 2h
stages:
  a:
    kind: write
    params: {text: x}
    resources: {cpus: 4, memory: 8G, gpus: 1, time: '${hours}'}
  b:
    kind: write
    params: {text: y}
";

#[test]
fn resources_are_read_with_units_and_variables() {
    let p = parse(WITH_RESOURCES, &[]).unwrap();
    let r = p.stages[0].resources;
    assert_eq!(r.cpus, Some(4));
    assert_eq!(r.memory_mib, Some(8192));
    assert_eq!(r.gpus, Some(1));
    assert_eq!(r.time_seconds, Some(7200));
    assert_eq!(
        p.stages[0].threads_or(1),
        4,
        "a job uses the CPUs it asks for"
    );
    assert_eq!(p.stages[1].resources, Default::default());
    assert_eq!(p.stages[1].threads_or(1), 1);
}

#[test]
fn overrides_may_set_resources_a_stage_leaves_out() {
    let p = parse(
        WITH_RESOURCES,
        &["b.resources.time=30m", "a.resources.memory=512M"],
    )
    .unwrap();
    assert_eq!(p.stages[1].resources.time_seconds, Some(1800));
    assert_eq!(p.stages[0].resources.memory_mib, Some(512));
}

#[test]
fn a_resource_without_a_unit_or_with_a_typo_is_located() {
    let msg = parse_err(
        "stages:\n  a:\n    kind: write\n    params: {text: x}\n    resources: {memory: 4096}\n",
        &[],
    );
    assert!(msg.contains("has no unit"), "{msg}");
    assert!(msg.contains("stages.a.resources.memory"), "{msg}");
    assert!(msg.contains("test.yaml:5:25"), "{msg}");
    let msg = parse_err(
        "stages:\n  a:\n    kind: write\n    params: {text: x}\n    resources: {cpu: 2}\n",
        &[],
    );
    assert!(msg.contains("unknown key `cpu`"), "{msg}");
    assert!(msg.contains("did you mean `cpus`?"), "{msg}");
    let msg = parse_err(
        "stages:\n  a:\n    kind: write\n    params: {text: x}\n    resources: {time: 90}\n",
        &[],
    );
    assert!(msg.contains("not a time limit"), "{msg}");
    let msg = parse_err(
        "stages:\n  a:\n    kind: write\n    params: {text: x}\n    resources: {cpus: 0}\n",
        &[],
    );
    assert!(msg.contains("expected at least 1, found 0"), "{msg}");
}

#[test]
fn threads_beyond_the_cpus_asked_for_are_an_error() {
    let msg = parse_err(
        "stages:\n  a:\n    kind: write\n    params: {text: x}\n    threads: 8\n    resources: {cpus: 2}\n",
        &[],
    );
    assert!(
        msg.contains("asks for 8 threads and `resources.cpus: 2`"),
        "{msg}"
    );
    assert!(msg.contains("stages.a.threads"), "{msg}");
}

#[test]
fn a_stage_name_longer_than_a_folder_name_may_be_is_refused() {
    let text = format!(
        "stages:\n  {}:\n    kind: write\n    params: {{text: x}}\n",
        "a".repeat(101)
    );
    let msg = parse_err(&text, &[]);
    assert!(msg.contains("cannot be a stage name"), "{msg}");
    assert!(msg.contains("at most 100"), "{msg}");
    let ok = format!(
        "stages:\n  {}:\n    kind: write\n    params: {{text: x}}\n",
        "a".repeat(100)
    );
    assert!(parse(&ok, &[]).is_ok());
}
