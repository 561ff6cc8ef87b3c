//! Checks on the shape of a flow: every node reachable from the start,
//! a way to end the call, and no loop that talks forever (a cycle of
//! nodes none of which waits for the caller).

use std::collections::{HashMap, HashSet, VecDeque};

use super::def::{FlowDef, NodeDef, NodeType};
use super::issue::Issue;

/// The nodes `n` can go to (references that resolve).
fn edges(n: &NodeDef, ids: &HashMap<String, usize>) -> Vec<usize> {
    let mut refs: Vec<&str> = Vec::new();
    refs.extend(n.next.as_deref());
    refs.extend(n.default.as_deref());
    refs.extend(n.on_failure.as_deref());
    for h in [&n.no_input, &n.no_match].into_iter().flatten() {
        refs.extend(h.next.as_deref());
    }
    for c in n.choices.iter().flatten() {
        refs.push(&c.next);
    }
    for c in n.cases.iter().flatten() {
        refs.push(&c.next);
    }
    let mut out: Vec<usize> = refs.iter().filter_map(|r| ids.get(*r).copied()).collect();
    out.dedup();
    out
}

/// Adds the shape problems of `def` to `issues`.
pub(super) fn check(
    issues: &mut Vec<Issue>,
    def: &FlowDef,
    ids: &HashMap<String, usize>,
    start: Option<usize>,
) {
    let graph: Vec<Vec<usize>> = def.nodes.iter().map(|n| edges(n, ids)).collect();
    if let Some(start) = start {
        unreachable(issues, def, ids, &graph, start);
    }
    talking_loops(issues, def, &graph);
    let ends = def
        .nodes
        .iter()
        .any(|n| matches!(n.kind, Some(NodeType::Hangup | NodeType::Transfer)));
    if !def.nodes.is_empty() && !ends {
        issues.push(Issue::new(
            "flow.nodes",
            "has no hangup or transfer node, so the call could never end",
        ));
    }
}

fn unreachable(
    issues: &mut Vec<Issue>,
    def: &FlowDef,
    ids: &HashMap<String, usize>,
    graph: &[Vec<usize>],
    start: usize,
) {
    let mut seen = vec![false; graph.len()];
    let mut queue = VecDeque::from([start]);
    seen[start] = true;
    while let Some(v) = queue.pop_front() {
        for &w in &graph[v] {
            if !seen[w] {
                seen[w] = true;
                queue.push_back(w);
            }
        }
    }
    for (i, n) in def.nodes.iter().enumerate() {
        // A duplicate id is reported as such; its node cannot be named.
        if !seen[i] && ids.get(&n.id) == Some(&i) {
            issues.push(Issue::new(
                format!("flow.nodes.{i}"),
                format!(
                    "node \"{}\" is never reached from the start node \"{}\"",
                    n.id, def.start
                ),
            ));
        }
    }
}

/// Reports each cycle of nodes that never listen, once, at the node where
/// the loop closes.
fn talking_loops(issues: &mut Vec<Issue>, def: &FlowDef, graph: &[Vec<usize>]) {
    let listens = |i: usize| def.nodes[i].kind.is_some_and(NodeType::listens);
    // 0: not visited, 1: on the current path, 2: done.
    let mut state = vec![0u8; graph.len()];
    let mut reported = HashSet::new();
    for root in 0..graph.len() {
        if state[root] != 0 || listens(root) {
            continue;
        }
        state[root] = 1;
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(top) = stack.last_mut() {
            let (v, next_edge) = (top.0, top.1);
            let Some(&w) = graph[v].get(next_edge) else {
                state[v] = 2;
                stack.pop();
                continue;
            };
            top.1 += 1;
            if listens(w) {
                continue;
            }
            match state[w] {
                0 => {
                    state[w] = 1;
                    stack.push((w, 0));
                }
                1 if reported.insert(w) => {
                    let from = stack.iter().position(|(x, _)| *x == w).unwrap_or(0);
                    let mut names: Vec<String> = stack[from..]
                        .iter()
                        .map(|(x, _)| format!("\"{}\"", def.nodes[*x].id))
                        .collect();
                    names.push(format!("\"{}\"", def.nodes[w].id));
                    issues.push(Issue::new(
                        format!("flow.nodes.{w}"),
                        format!(
                            "loops through {} without listening to the caller: the call would talk forever",
                            names.join(" → ")
                        ),
                    ));
                }
                _ => {}
            }
        }
    }
}
