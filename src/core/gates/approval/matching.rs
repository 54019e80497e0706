//! Which rule each approver counts for.

/// Gives each approver (by the rules that allow them) at most one rule, so
/// that as many rules as possible get what they need: a maximum bipartite
/// matching with `needed[rule]` places per rule, found with augmenting
/// paths (Kuhn's algorithm), approvers taken in order so that earlier ones
/// keep their place. Greedy assignment is not enough: an approver allowed by
/// two rules may take the only place another approver could fill.
/// Approvers left over then count for the first rule that allows them,
/// which is met already: had it a free place, the matching would have
/// used it.
pub(super) fn assign(allowed: &[Vec<usize>], needed: &[usize]) -> Vec<Option<usize>> {
    fn augment(
        person: usize,
        allowed: &[Vec<usize>],
        needed: &[usize],
        holders: &mut [Vec<usize>],
        assignment: &mut [Option<usize>],
        visited: &mut [bool],
    ) -> bool {
        for &rule in &allowed[person] {
            if visited[rule] {
                continue;
            }
            visited[rule] = true;
            if holders[rule].len() < needed[rule] {
                holders[rule].push(person);
                assignment[person] = Some(rule);
                return true;
            }
            for place in 0..holders[rule].len() {
                let other = holders[rule][place];
                if augment(other, allowed, needed, holders, assignment, visited) {
                    holders[rule][place] = person;
                    assignment[person] = Some(rule);
                    return true;
                }
            }
        }
        false
    }
    let mut holders = vec![Vec::new(); needed.len()];
    let mut assignment = vec![None; allowed.len()];
    for person in 0..allowed.len() {
        let mut visited = vec![false; needed.len()];
        augment(
            person,
            allowed,
            needed,
            &mut holders,
            &mut assignment,
            &mut visited,
        );
    }
    for (person, rule) in assignment.iter_mut().enumerate() {
        if rule.is_none() {
            *rule = allowed[person].first().copied();
        }
    }
    assignment
}
