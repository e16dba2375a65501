//! The in-memory backend: a `BTreeMap` behind a lock. Ephemeral.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::RwLock;

use super::{
    Batch, Conflict, Expect, Keystore, Op, Record, Scan, StoreError, Visitor, physical_key, select,
    visit_physical,
};

/// A keystore that lives only as long as the process. For tests and caches.
#[derive(Default)]
pub struct MemoryKeystore {
    map: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
}

/// A summary (the record count), never the records.
impl std::fmt::Debug for MemoryKeystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("MemoryKeystore");
        match self.map.read() {
            Ok(m) => d.field("records", &m.len()),
            Err(_) => d.field("records", &"unknown (lock poisoned)"),
        };
        d.finish()
    }
}

impl MemoryKeystore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Other("memory keystore lock poisoned".into())
}

impl Keystore for MemoryKeystore {
    fn get(&self, ns: &str, id: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .map
            .read()
            .map_err(poisoned)?
            .get(&physical_key(ns, id))
            .cloned())
    }

    fn scan(&self, ns: &str, scan: Scan<'_>) -> Result<Vec<Record>, StoreError> {
        let map = self.map.read().map_err(poisoned)?;
        let prefix = physical_key(ns, scan.prefix);
        // Start at the cursor when there is one, so paging does not rescan.
        let start = match scan.after {
            Some(after) if after >= scan.prefix => physical_key(ns, after),
            _ => prefix.clone(),
        };
        let iter = map
            .range::<Vec<u8>, _>((Bound::Included(&start), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| Ok::<_, StoreError>((k.clone(), v.clone())));
        select(ns, scan, iter)
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        // One write lock for the whole batch: readers see all of it or none.
        let mut map = self.map.write().map_err(poisoned)?;
        apply_locked(&mut map, batch);
        Ok(())
    }

    fn apply_if(
        &self,
        expect: &[Expect<'_>],
        batch: Batch,
    ) -> Result<Result<(), Conflict>, StoreError> {
        // The store lives in this process only, so its lock is the whole
        // story: check and apply under one write lock.
        let mut map = self.map.write().map_err(poisoned)?;
        let unchanged = expect
            .iter()
            .all(|e| map.get(&physical_key(e.ns, e.id)).map(Vec::as_slice) == e.value);
        if !unchanged {
            return Ok(Err(Conflict));
        }
        apply_locked(&mut map, batch);
        Ok(Ok(()))
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn visit_all(&self, visit: &mut Visitor<'_>) -> Result<(), StoreError> {
        let map = self.map.read().map_err(poisoned)?;
        visit_physical(
            map.iter()
                .map(|(k, v)| Ok::<_, StoreError>((k.clone(), v.clone()))),
            |e| e,
            visit,
        )
    }
}

fn apply_locked(map: &mut BTreeMap<Vec<u8>, Vec<u8>>, batch: Batch) {
    for op in batch.into_ops() {
        match op {
            Op::Put { ns, id, value } => {
                map.insert(physical_key(ns, &id), value);
            }
            Op::Delete { ns, id } => {
                map.remove(&physical_key(ns, &id));
            }
        }
    }
}
