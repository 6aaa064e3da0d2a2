//! A small simulated fleet for the dashboard tests: nodes on two channels,
//! one reporting a hostile host name and error message, a rollout with
//! nodes in every phase (waiting, downloading, installed, healthy, failed,
//! rolled back), and a FleetLock holder.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use moho_protocol::node::EventKind;

use super::{TestNode, TestServer};

/// The host name the hostile node reports.
pub const HOSTILE_NAME: &str = "<script>alert(1)</script>";
/// The error message it reports.
pub const HOSTILE_MESSAGE: &str = "<img src=x onerror=alert(2)>disk full";
/// Nodes on the stable channel (more than one page of the node table).
pub const STABLE_NODES: usize = 60;
/// Nodes on the beta channel.
pub const BETA_NODES: usize = 5;

/// What the fleet looks like.
pub struct Fleet {
    /// The rollout of 1.1.0 to stable/default.
    pub rollout: i64,
    /// Id of the node with the hostile host name.
    pub hostile: String,
    /// Stable nodes, in id order.
    pub stable: Vec<TestNode>,
}

fn v(s: &str) -> String {
    s.to_owned()
}

/// Builds the fleet on `s`.
pub async fn simulated_fleet(s: &TestServer) -> Fleet {
    s.add_release("1.1.0", &["stable", "beta"]).await;
    let mut stable: Vec<TestNode> = (0..STABLE_NODES)
        .map(|i| TestNode::new(&format!("node-{i:03}")))
        .collect();
    for n in &mut stable {
        n.hostname = Some(format!("web-{}.example.org", &n.id[5..]));
    }
    let hostile = stable[7].id.clone();
    stable[7].hostname = Some(HOSTILE_NAME.to_owned());
    for n in &mut stable {
        assert_eq!(n.check_in(s).await.status, 200);
    }
    for i in 0..BETA_NODES {
        let mut n = TestNode::new(&format!("beta-{i}"));
        n.channel = "beta".into();
        assert_eq!(n.check_in(s).await.status, 200);
    }
    let rollout = s
        .rollout(
            "1.1.0",
            serde_json::json!({"steps": [{"percent": 50, "hold": "1h"}, {"percent": 100}],
                               "max_in_flight": 100, "update_timeout": "2h"}),
        )
        .await;
    // Everyone asks again; the ramp reaches half of them. The hostile node
    // is made to be in line by asking until it is (its place is fixed, so
    // pick the phase plan by who got an offer).
    let mut offered = Vec::new();
    for (i, n) in stable.iter_mut().enumerate() {
        let a = n.check_in(s).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        if a.body["action"] == "install" {
            offered.push(i);
        }
    }
    assert!(offered.len() >= 20, "{} offered", offered.len());
    let plan: Vec<Vec<EventKind>> = vec![
        vec![EventKind::DownloadStarted {
            version: v("1.1.0"),
        }],
        vec![EventKind::DownloadStarted {
            version: v("1.1.0"),
        }],
        vec![
            EventKind::DownloadStarted {
                version: v("1.1.0"),
            },
            EventKind::DownloadFinished {
                version: v("1.1.0"),
            },
            EventKind::Installed {
                version: v("1.1.0"),
            },
        ],
        vec![
            EventKind::Installed {
                version: v("1.1.0"),
            },
            EventKind::Rebooting {
                version: v("1.1.0"),
            },
        ],
        vec![
            EventKind::Installed {
                version: v("1.1.0"),
            },
            EventKind::BootedNewVersion {
                version: v("1.1.0"),
            },
            EventKind::Healthy {
                version: v("1.1.0"),
            },
        ],
        vec![EventKind::Healthy {
            version: v("1.1.0"),
        }],
        vec![EventKind::Healthy {
            version: v("1.1.0"),
        }],
        vec![EventKind::Healthy {
            version: v("1.1.0"),
        }],
        vec![EventKind::Rollback {
            failed_version: v("1.1.0"),
            booted_version: v("1.0.0"),
            reason: None,
        }],
        vec![EventKind::Error {
            version: Some(v("1.1.0")),
            code: v("write_failed"),
            message: v(HOSTILE_MESSAGE),
        }],
    ];
    for (i, events) in offered.iter().zip(plan) {
        let a = stable[*i].report(s, events).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
    }
    // The hostile node reports an error too (whether or not it is in line).
    let h = &mut stable[7];
    let a = h
        .report(
            s,
            vec![EventKind::Error {
                version: None,
                code: v("<b>code</b>"),
                message: v(HOSTILE_MESSAGE),
            }],
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    // The last stable node holds the default group's reboot slot (signed,
    // as FleetLock is only for enrolled nodes).
    let a = stable[STABLE_NODES - 1]
        .fleetlock(s, "/v1/pre-reboot")
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    Fleet {
        rollout,
        hostile,
        stable,
    }
}
