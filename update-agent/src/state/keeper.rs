//! The one owner of the agent's state: the current [`AgentState`], the
//! store it is persisted in, and the transition that applies an event. Every
//! event, whoever produced it (the install, the boot assessment, a command),
//! goes through [`StateKeeper::apply`]; what the transition asks beyond
//! persisting (reports, deny, reboot, lock) is handed back to the caller.

use std::path::Path;

use super::machine::{Action, AgentState, Event, StateError};
use super::store::{StateStore, StoreError};

/// The state and where it is kept.
#[derive(Debug)]
pub struct StateKeeper {
    store: StateStore,
    state: AgentState,
}

/// An event could not be applied; the state is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum KeeperError {
    /// The event makes no sense in the current state (a bug, or a race).
    #[error(transparent)]
    State(#[from] StateError),
    /// The new state could not be persisted.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StateKeeper {
    /// Loads the persisted state of `state_dir` (`Idle` when there is none).
    pub fn load(state_dir: &Path) -> Result<Self, StoreError> {
        let store = StateStore::new(state_dir);
        let state = store.load()?;
        Ok(Self { store, state })
    }

    /// The current state.
    pub fn state(&self) -> &AgentState {
        &self.state
    }

    /// Applies `event`: computes the transition, persists the new state when
    /// the transition says so (before it takes effect: a crash leaves the
    /// old or the new state), and returns the other actions, in order.
    pub fn apply(&mut self, event: Event) -> Result<Vec<Action>, KeeperError> {
        let (next, actions) = self.state.on(event)?;
        if actions.contains(&Action::Persist) {
            self.store.save(&next)?;
        }
        tracing::info!(from = self.state.name(), to = next.name(), "agent state");
        self.state = next;
        Ok(actions
            .into_iter()
            .filter(|a| *a != Action::Persist)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Staged;
    use moho_core::slot_table::SlotName;

    #[test]
    fn applied_events_are_persisted_and_refused_ones_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut k = StateKeeper::load(dir.path()).unwrap();
        assert_eq!(*k.state(), AgentState::Idle);
        k.apply(Event::CheckStarted).unwrap();
        let staged = Staged {
            target: "b/1.1.0/root.img".into(),
            version: "1.1.0".into(),
            slot: SlotName::B,
            revert: false,
        };
        let actions = k.apply(Event::UpdateChosen(staged.clone())).unwrap();
        assert_eq!(actions.len(), 1, "the report, not the persist: {actions:?}");
        assert!(k.apply(Event::Armed).is_err());
        assert_eq!(*k.state(), AgentState::Downloading(staged.clone()));
        let again = StateKeeper::load(dir.path()).unwrap();
        assert_eq!(*again.state(), AgentState::Downloading(staged));
    }
}
