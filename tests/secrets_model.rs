//! Model-based property test of a secret's versions and stages: random
//! sequences of CreateSecret, PutSecretValue, UpdateSecretVersionStage,
//! DeleteSecret, RestoreSecret, GetSecretValue and clock moves, run against
//! the library and against a plain model of the vendor's rules; after every
//! step the outcomes, the versions, their stages and the values must agree.

use std::collections::BTreeSet;

use localkms::{
    CreateSecretRequest, Error, GetSecretValueRequest, Kms, ManualClock, Paging,
    PutSecretValueRequest, SecretDeletion,
};
use proptest::prelude::*;

const NAME: &str = "model/secret";
const STAGES: [&str; 5] = ["ACSCurrent", "ACSPrevious", "ACSPending", "blue", "green"];
const CUR: &str = "ACSCurrent";
const PREV: &str = "ACSPrevious";

#[derive(Debug, Clone)]
enum Op {
    Create(u8),
    Put {
        id: u8,
        value: u8,
        stages: Vec<usize>,
    },
    Stage {
        stage: usize,
        remove_from: Option<u8>,
        move_to: Option<u8>,
    },
    Delete(u32),
    ForceDelete,
    Restore,
    Advance(i64),
    GetStage(usize),
    GetVersion(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => any::<u8>().prop_map(Op::Create),
        8 => (0u8..20, 0u8..3, proptest::collection::vec(0usize..5, 0..3))
            .prop_map(|(id, value, stages)| Op::Put { id, value, stages }),
        5 => (0usize..5, proptest::option::of(0u8..14), proptest::option::of(0u8..14))
            .prop_map(|(stage, remove_from, move_to)| Op::Stage { stage, remove_from, move_to }),
        1 => (6u32..=31).prop_map(Op::Delete),
        1 => Just(Op::ForceDelete),
        2 => Just(Op::Restore),
        2 => (0i64..10 * 86_400).prop_map(Op::Advance),
        2 => (0usize..5).prop_map(Op::GetStage),
        2 => (0u8..14).prop_map(Op::GetVersion),
    ]
}

fn vid(i: u8) -> String {
    format!("v{i}")
}

#[derive(Debug, Clone)]
struct Version {
    id: String,
    value: Vec<u8>,
    stages: BTreeSet<String>,
}

/// The vendor's rules, written plainly.
#[derive(Debug, Default, Clone)]
struct Model {
    exists: bool,
    planned: Option<i64>,
    versions: Vec<Version>,
}

type Outcome = Result<(), &'static str>;

impl Model {
    fn holder(&self, stage: &str) -> Option<usize> {
        self.versions.iter().position(|v| v.stages.contains(stage))
    }

    fn find(&self, id: &str) -> Option<usize> {
        self.versions.iter().position(|v| v.id == id)
    }

    fn attach(&mut self, stage: &str, to: usize) {
        if stage == CUR
            && let Some(old) = self.holder(CUR)
            && old != to
        {
            for v in &mut self.versions {
                v.stages.remove(PREV);
            }
            self.versions[old].stages.insert(PREV.into());
        }
        for v in &mut self.versions {
            v.stages.remove(stage);
        }
        self.versions[to].stages.insert(stage.into());
    }

    fn stage_count(&self) -> usize {
        self.versions
            .iter()
            .flat_map(|v| v.stages.iter())
            .collect::<BTreeSet<_>>()
            .len()
    }

    fn tick(&mut self, now: i64) {
        if self.planned.is_some_and(|d| now >= d) {
            *self = Model::default();
        }
    }

    fn live(&self) -> Outcome {
        if !self.exists {
            Err("Forbidden.ResourceNotFound")
        } else if self.planned.is_some() {
            Err("Rejected.ResourceInUse")
        } else {
            Ok(())
        }
    }

    fn apply(&mut self, op: &Op, now: i64) -> (Outcome, Option<Vec<u8>>) {
        match op {
            Op::Create(value) => {
                if self.exists {
                    return (Err("Rejected.ResourceExist"), None);
                }
                *self = Model {
                    exists: true,
                    planned: None,
                    versions: vec![Version {
                        id: "v0".into(),
                        value: vec![*value; 3],
                        stages: [CUR.to_owned()].into(),
                    }],
                };
                (Ok(()), None)
            }
            Op::Put { id, value, stages } => {
                if let Err(e) = self.live() {
                    return (Err(e), None);
                }
                let id = vid(*id);
                let value = vec![*value; 3];
                if let Some(i) = self.find(&id) {
                    return if self.versions[i].value == value {
                        (Ok(()), None)
                    } else {
                        (Err("Rejected.ResourceExist"), None)
                    };
                }
                let before = self.clone();
                self.versions.push(Version {
                    id,
                    value,
                    stages: BTreeSet::new(),
                });
                let to = self.versions.len() - 1;
                if stages.is_empty() {
                    self.attach(CUR, to);
                }
                for s in stages {
                    self.attach(STAGES[*s], to);
                }
                if self.stage_count() > 8 {
                    *self = before;
                    return (Err("Rejected.LimitExceeded"), None);
                }
                while self.versions.len() > 10 {
                    match self.versions.iter().position(|v| v.stages.is_empty()) {
                        Some(i) => {
                            self.versions.remove(i);
                        }
                        None => unreachable!("at most 8 stages on 11 versions"),
                    }
                }
                (Ok(()), None)
            }
            Op::Stage {
                stage,
                remove_from,
                move_to,
            } => {
                if let Err(e) = self.live() {
                    return (Err(e), None);
                }
                let stage = STAGES[*stage];
                let reserved = stage == CUR || stage == PREV;
                let (from, to) = (remove_from.map(vid), move_to.map(vid));
                match (&from, &to) {
                    (None, None) => return (Err("InvalidParameter"), None),
                    (Some(_), None) if reserved => return (Err("InvalidParameter"), None),
                    _ => {}
                }
                if let Some(f) = &from {
                    match self.find(f) {
                        None => return (Err("Forbidden.ResourceNotFound"), None),
                        Some(i) if !self.versions[i].stages.contains(stage) => {
                            return (Err("InvalidParameter"), None);
                        }
                        Some(_) => {}
                    }
                }
                match to {
                    Some(t) => match self.find(&t) {
                        None => (Err("Forbidden.ResourceNotFound"), None),
                        Some(i) => {
                            self.attach(stage, i);
                            (Ok(()), None)
                        }
                    },
                    None => {
                        if let Some(i) = from.and_then(|f| self.find(&f)) {
                            self.versions[i].stages.remove(stage);
                        }
                        (Ok(()), None)
                    }
                }
            }
            Op::Delete(days) => {
                if !(7..=30).contains(days) {
                    return (Err("InvalidParameter"), None);
                }
                if let Err(e) = self.live() {
                    return (Err(e), None);
                }
                self.planned = Some(now + i64::from(*days) * 86_400);
                (Ok(()), None)
            }
            Op::ForceDelete => {
                if !self.exists {
                    return (Err("Forbidden.ResourceNotFound"), None);
                }
                *self = Model::default();
                (Ok(()), None)
            }
            Op::Restore => {
                if !self.exists {
                    (Err("Forbidden.ResourceNotFound"), None)
                } else if self.planned.take().is_none() {
                    (Err("Rejected.ResourceInUse"), None)
                } else {
                    (Ok(()), None)
                }
            }
            Op::Advance(_) => (Ok(()), None),
            Op::GetStage(s) => {
                if let Err(e) = self.live() {
                    return (Err(e), None);
                }
                match self.holder(STAGES[*s]) {
                    Some(i) => (Ok(()), Some(self.versions[i].value.clone())),
                    None => (Err("Forbidden.ResourceNotFound"), None),
                }
            }
            Op::GetVersion(id) => {
                if let Err(e) = self.live() {
                    return (Err(e), None);
                }
                match self.find(&vid(*id)) {
                    Some(i) => (Ok(()), Some(self.versions[i].value.clone())),
                    None => (Err("Forbidden.ResourceNotFound"), None),
                }
            }
        }
    }
}

fn run(kms: &Kms, clock: &ManualClock, op: &Op) -> (Outcome, Option<Vec<u8>>) {
    let unit = |r: Result<(), Error>| r.map_err(|e| e.code());
    let value = |r: Result<localkms::SecretValue, Error>| match r {
        Ok(v) => (Ok(()), Some(v.secret_data.expose_secret().to_vec())),
        Err(e) => (Err(e.code()), None),
    };
    match op {
        Op::Create(v) => {
            let req = CreateSecretRequest {
                version_id: Some("v0".into()),
                ..CreateSecretRequest::new(NAME)
            };
            (unit(kms.create_secret(&req, &[*v; 3]).map(drop)), None)
        }
        Op::Put { id, value, stages } => {
            let req =
                PutSecretValueRequest::version(vid(*id)).stages(stages.iter().map(|s| STAGES[*s]));
            (
                unit(kms.put_secret_value(NAME, &[*value; 3], &req).map(drop)),
                None,
            )
        }
        Op::Stage {
            stage,
            remove_from,
            move_to,
        } => (
            unit(kms.update_secret_version_stage(
                NAME,
                STAGES[*stage],
                remove_from.map(vid).as_deref(),
                move_to.map(vid).as_deref(),
            )),
            None,
        ),
        Op::Delete(days) => (
            unit(
                kms.delete_secret(NAME, SecretDeletion::RecoveryWindow(*days))
                    .map(drop),
            ),
            None,
        ),
        Op::ForceDelete => (
            unit(kms.delete_secret(NAME, SecretDeletion::Force).map(drop)),
            None,
        ),
        Op::Restore => (unit(kms.restore_secret(NAME)), None),
        Op::Advance(secs) => {
            clock.advance(*secs);
            (Ok(()), None)
        }
        Op::GetStage(s) => {
            value(kms.get_secret_value(NAME, &GetSecretValueRequest::stage(STAGES[*s])))
        }
        Op::GetVersion(id) => {
            value(kms.get_secret_value(NAME, &GetSecretValueRequest::version(vid(*id))))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn versions_and_stages_follow_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        let clock = ManualClock::new(1_767_225_600);
        let kms = Kms::builder().clock(clock.clone()).build().expect("kms");
        let mut model = Model::default();
        let start = [Op::Create(9)];
        for (step, op) in start.iter().chain(&ops).enumerate() {
            let got = run(&kms, &clock, op);
            model.tick(kms.now());
            let want = model.apply(op, kms.now());
            prop_assert_eq!(&got, &want, "step {} {:?}", step, op);
            // The whole state agrees.
            let listed = kms.list_secret_version_ids(NAME, true, Paging::new(1, 100).expect("paging"));
            match listed {
                Ok(page) => {
                    prop_assert!(model.exists, "step {}: listed but the model has none", step);
                    let got: Vec<(String, Vec<String>)> = page
                        .items
                        .into_iter()
                        .map(|v| (v.version_id, v.version_stages))
                        .collect();
                    let want: Vec<(String, Vec<String>)> = model
                        .versions
                        .iter()
                        .map(|v| (v.id.clone(), v.stages.iter().cloned().collect()))
                        .collect();
                    prop_assert_eq!(got, want, "step {} {:?}", step, op);
                    let planned = kms.describe_secret(NAME, false).expect("describe").planned_delete_time;
                    prop_assert_eq!(planned.is_empty(), model.planned.is_none());
                }
                Err(e) => {
                    prop_assert_eq!(e.code(), "Forbidden.ResourceNotFound");
                    prop_assert!(!model.exists, "step {}: the model has a secret", step);
                }
            }
        }
    }
}
