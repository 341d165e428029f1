use std::collections::BTreeMap;
use std::fs;

use super::*;
use crate::materialize::{is_intact, materialize};
use crate::verify::verify;

fn key(n: u8) -> StageKey {
    StageKey(Digest::of(&[n]))
}

fn write_outputs(dir: &Path, files: &[(&str, &[u8])]) {
    for (name, bytes) in files {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }
}

fn committed(store: &Store, k: StageKey, files: &[(&str, &[u8])]) -> Manifest {
    let staging = store.staging("test").unwrap();
    write_outputs(staging.path(), files);
    store.commit(&k, staging.path(), BTreeMap::new()).unwrap()
}

#[test]
fn commit_then_lookup_returns_the_same_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let m = committed(
        &store,
        key(1),
        &[("a.txt", b"alpha"), ("sub/b.bin", b"beta")],
    );
    assert_eq!(m.files.len(), 2);
    assert!(m.files.contains_key("sub/b.bin"));
    assert_eq!(store.manifest(&key(1)).unwrap(), Some(m.clone()));
    assert_eq!(store.manifest(&key(2)).unwrap(), None);
    store.check_present(&m).unwrap();
}

#[test]
fn identical_outputs_share_objects_and_tree_digest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = committed(&store, key(1), &[("x", b"same")]);
    let b = committed(&store, key(2), &[("x", b"same")]);
    assert_eq!(a.tree_digest(), b.tree_digest());
    assert_eq!(list_files(&store.layout().objects()).unwrap().len(), 1);
}

#[test]
fn a_symlink_in_the_outputs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let staging = store.staging("t").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", staging.path().join("link")).unwrap();
    let err = store
        .commit(&key(1), staging.path(), BTreeMap::new())
        .unwrap_err();
    assert!(matches!(err, StoreError::NotAFile { .. }), "{err}");
    assert_eq!(store.manifest(&key(1)).unwrap(), None, "nothing committed");
}

#[test]
fn a_garbled_manifest_counts_as_absent_and_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    committed(&store, key(1), &[("x", b"1")]);
    let path = store.layout().manifest(&key(1));
    fs::write(&path, b"{ not json").unwrap();
    assert_eq!(store.manifest(&key(1)).unwrap(), None);
    assert!(!path.exists());
}

#[test]
fn verify_finds_a_flipped_byte_and_repair_forgets_the_stage() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let m = committed(&store, key(1), &[("x", b"hello world")]);
    committed(&store, key(2), &[("y", b"untouched")]);
    let object = store.layout().object(&m.files["x"].digest);
    let mut bytes = fs::read(&object).unwrap();
    bytes[0] ^= 1;
    fs::set_permissions(&object, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&object, &bytes).unwrap();
    assert!(store.verify_entry(&m.files["x"]).is_err());

    let report = verify(&store, 2, false).unwrap();
    assert_eq!(report.objects, 2);
    assert_eq!(report.damaged, vec![object.clone()]);
    assert!(
        report.broken_manifests.is_empty(),
        "size unchanged, so manifests look fine"
    );

    let report = verify(&store, 2, true).unwrap();
    assert_eq!(report.damaged.len(), 1);
    assert!(!object.exists(), "damaged object moved aside");
    assert_eq!(report.broken_manifests.len(), 1);
    assert_eq!(
        store.manifest(&key(1)).unwrap(),
        None,
        "the stage will run again"
    );
    assert!(store.manifest(&key(2)).unwrap().is_some());
}

#[test]
fn materialized_copies_do_not_alias_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let m = committed(&store, key(1), &[("metrics.txt", b"loss 0.1")]);
    let out = dir.path().join("outputs/p/train");
    let stamps = materialize(&store, &m, &[("_stage.json", b"{}")], &out).unwrap();
    assert!(is_intact(&out, &stamps));
    fs::write(out.join("metrics.txt"), b"edited by hand").unwrap();
    store.verify_entry(&m.files["metrics.txt"]).unwrap();
    assert!(!is_intact(&out, &stamps), "the edit is noticed");
    let stamps = materialize(&store, &m, &[], &out).unwrap();
    assert_eq!(fs::read(out.join("metrics.txt")).unwrap(), b"loss 0.1");
    assert!(
        !out.join("_stage.json").exists(),
        "a new generation replaces the whole folder"
    );
    assert!(is_intact(&out, &stamps));
}

#[test]
fn input_views_hold_the_committed_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let m = committed(&store, key(1), &[("d/data.bin", b"0123")]);
    let view = store.staging("view").unwrap();
    store.input_view(&m, view.path()).unwrap();
    assert_eq!(fs::read(view.path().join("d/data.bin")).unwrap(), b"0123");
}
