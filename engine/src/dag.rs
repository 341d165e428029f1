//! The stage graph: edges from each stage to the stages that read its outputs, a stable
//! topological order, and cycle reporting.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

/// A graph over stage indices; an edge `a -> b` means `b` reads the outputs of `a`.
pub struct StageGraph {
    graph: DiGraph<usize, ()>,
}

impl StageGraph {
    /// Builds the graph from each stage's upstream indices.
    pub fn new(upstream: &[Vec<usize>]) -> Self {
        let mut graph = DiGraph::with_capacity(upstream.len(), upstream.len());
        let nodes: Vec<NodeIndex> = (0..upstream.len()).map(|i| graph.add_node(i)).collect();
        for (to, froms) in upstream.iter().enumerate() {
            for &from in froms {
                graph.update_edge(nodes[from], nodes[to], ());
            }
        }
        Self { graph }
    }

    /// A topological order that keeps file order wherever the edges allow (Kahn's algorithm
    /// taking the lowest ready index first), or one cycle, as a list of indices that starts
    /// and ends with the same stage.
    pub fn order(&self) -> Result<Vec<usize>, Vec<usize>> {
        if let Some(cycle) = self.find_cycle() {
            return Err(cycle);
        }
        let n = self.graph.node_count();
        let mut indegree: Vec<usize> = (0..n)
            .map(|i| {
                self.graph
                    .neighbors_directed(NodeIndex::new(i), petgraph::Incoming)
                    .count()
            })
            .collect();
        let mut ready: BinaryHeap<Reverse<usize>> =
            (0..n).filter(|&i| indegree[i] == 0).map(Reverse).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(Reverse(i)) = ready.pop() {
            order.push(i);
            for next in self.graph.neighbors(NodeIndex::new(i)) {
                let j = next.index();
                indegree[j] -= 1;
                if indegree[j] == 0 {
                    ready.push(Reverse(j));
                }
            }
        }
        Ok(order)
    }

    fn find_cycle(&self) -> Option<Vec<usize>> {
        for scc in tarjan_scc(&self.graph) {
            let self_loop = scc.len() == 1 && self.graph.contains_edge(scc[0], scc[0]);
            if scc.len() > 1 || self_loop {
                let members: BTreeMap<usize, ()> = scc.iter().map(|n| (n.index(), ())).collect();
                let start = *members.keys().next()?;
                return Some(self.path_back(start, &members));
            }
        }
        None
    }

    /// A path from `start` back to itself inside one strongly connected component.
    fn path_back(&self, start: usize, members: &BTreeMap<usize, ()>) -> Vec<usize> {
        let mut path = vec![start];
        let mut seen = vec![false; self.graph.node_count()];
        if self.dfs(start, start, members, &mut path, &mut seen) {
            path
        } else {
            vec![start, start]
        }
    }

    fn dfs(
        &self,
        at: usize,
        goal: usize,
        members: &BTreeMap<usize, ()>,
        path: &mut Vec<usize>,
        seen: &mut [bool],
    ) -> bool {
        let mut next: Vec<usize> = self
            .graph
            .neighbors(NodeIndex::new(at))
            .map(NodeIndex::index)
            .filter(|j| members.contains_key(j))
            .collect();
        next.sort_unstable();
        for j in next {
            if j == goal {
                path.push(j);
                return true;
            }
            if !seen[j] {
                seen[j] = true;
                path.push(j);
                if self.dfs(j, goal, members, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::StageGraph;

    #[test]
    fn orders_inputs_before_readers_and_keeps_file_order() {
        // 0 <- 2, 1 independent, 2 <- 3
        let g = StageGraph::new(&[vec![2], vec![], vec![], vec![2]]);
        assert_eq!(g.order().unwrap(), vec![1, 2, 0, 3]);
    }

    #[test]
    fn reports_a_cycle_as_a_closed_path() {
        // 0 reads 2, 1 reads 0, 2 reads 1: 0 -> 1 -> 2 -> 0
        let g = StageGraph::new(&[vec![2], vec![0], vec![1]]);
        assert_eq!(g.order().unwrap_err(), vec![0, 1, 2, 0]);
    }

    #[test]
    fn a_stage_reading_itself_is_a_cycle() {
        let g = StageGraph::new(&[vec![0]]);
        assert_eq!(g.order().unwrap_err(), vec![0, 0]);
    }
}
