//! Walks PromQL syntax trees (`promql-parser`) for the static checks of the
//! dashboards (`tests/dashboards.rs`) and of the alert and recording rules
//! (`tests/rules.rs`): every selector, with what the path down to it says.
#![allow(dead_code)]

use promql_parser::parser::{Expr, VectorSelector};

/// Where an expression stands in its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The expression an aggregation (`sum`, `max`, `topk`, …) aggregates.
    Aggregated,
    /// An aggregation's parameter (the 5 of `topk(5, …)`).
    AggregationParam,
    /// An argument of the function named.
    Argument(&'static str),
    /// Under a unary or binary operator, parentheses or a subquery.
    Plain,
}

/// Every vector selector of `e` (a range selector's too), each with its
/// context: `context` at the root, `step(context, place)` one level down.
pub fn selectors_with<'a, C: Copy>(
    e: &'a Expr,
    context: C,
    step: &impl Fn(C, Place) -> C,
    out: &mut Vec<(&'a VectorSelector, C)>,
) {
    let mut down = |child: &'a Expr, place| selectors_with(child, step(context, place), step, out);
    match e {
        Expr::VectorSelector(v) => out.push((v, context)),
        Expr::MatrixSelector(m) => out.push((&m.vs, context)),
        Expr::Aggregate(a) => {
            down(&a.expr, Place::Aggregated);
            if let Some(p) = &a.param {
                down(p, Place::AggregationParam);
            }
        }
        Expr::Unary(u) => down(&u.expr, Place::Plain),
        Expr::Binary(b) => {
            down(&b.lhs, Place::Plain);
            down(&b.rhs, Place::Plain);
        }
        Expr::Paren(p) => down(&p.expr, Place::Plain),
        Expr::Subquery(s) => down(&s.expr, Place::Plain),
        Expr::Call(c) => {
            for a in &c.args.args {
                down(a, Place::Argument(c.func.name));
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}
