//! The WorkContract plugin's permissions by role (an assumption of the simulator, §9.1, §11).

use crate::sim::data::{User, rank};

/// Assumption: the plugin's permissions by role. §11 gives `contract_other_profile` to
/// ADMIN+; the rest are not in the contract and are granted as a plausible default set.
pub(super) fn can(user: &User, perm: &str) -> bool {
    let need = match perm {
        "contract_other_profile" | "edit_public_holidays" | "lock_times_contract" => 2,
        // ROLE_USER lacks `delete_own_absence` (§9.1).
        "approve_absence" | "delete_own_absence" => 1,
        _ => return false,
    };
    rank(user.role) >= need
}
