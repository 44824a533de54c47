//! A view's index and validity expressions as CUDA C, for kernels that read or write through a
//! view: the expression in the logical element index `i` (an `int`).
use luminal::prelude::*;
use luminal::shape::symbolic::{BigExpression, Term};

/// `(index, valid)` of `view` in terms of `i`.
pub fn view_expressions(view: &ShapeTracker) -> (String, String) {
    (
        render(&view.index_expression()),
        render(&view.valid_expression()),
    )
}

/// Evaluates the postfix terms as luminal does (the first operand popped is the left one).
fn render(expression: &BigExpression) -> String {
    let mut stack: Vec<String> = Vec::new();
    for term in &expression.terms {
        let rendered = match term {
            Term::Num(n) if *n < 0 => format!("({n})"),
            Term::Num(n) => n.to_string(),
            Term::Var(_) => "i".to_string(),
            op => {
                let a = stack.pop().expect("well-formed expression");
                let b = stack.pop().expect("well-formed expression");
                match op {
                    Term::Add => format!("({a} + {b})"),
                    Term::Sub => format!("({a} - {b})"),
                    Term::Mul => format!("({a} * {b})"),
                    Term::Div => format!("({a} / {b})"),
                    Term::Mod => format!("({a} % {b})"),
                    Term::Min => format!("min({a}, {b})"),
                    Term::Max => format!("max({a}, {b})"),
                    // C's comparisons and logic give the ints 0 and 1, as luminal's do.
                    Term::And => format!("(({a} != 0) && ({b} != 0))"),
                    Term::Or => format!("(({a} != 0) || ({b} != 0))"),
                    Term::Gte => format!("({a} >= {b})"),
                    Term::Lt => format!("({a} < {b})"),
                    Term::Num(_) | Term::Var(_) => unreachable!(),
                }
            }
        };
        stack.push(rendered);
    }
    stack.pop().expect("a non-empty expression")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluates rendered C for `i` with a tiny interpreter of the same grammar: enough to check
    /// that the rendering keeps luminal's operand order.
    fn agree(view: ShapeTracker, len: usize) {
        let (index, valid) = (view.index_expression(), view.valid_expression());
        let (index_c, valid_c) = view_expressions(&view);
        for i in 0..len {
            assert_eq!(
                eval(&index_c, i as i64),
                index.exec_single_var(i) as i64,
                "{index_c}"
            );
            assert_eq!(
                eval(&valid_c, i as i64),
                valid.exec_single_var(i) as i64,
                "{valid_c}"
            );
        }
    }

    fn eval(c: &str, i: i64) -> i64 {
        let tokens = tokenize(c);
        let mut at = 0;
        let value = parse(&tokens, &mut at, i);
        assert_eq!(at, tokens.len(), "trailing tokens in {c}");
        value
    }

    fn tokenize(c: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        let chars: Vec<char> = c.chars().collect();
        let mut k = 0;
        while k < chars.len() {
            let ch = chars[k];
            if ch.is_whitespace() {
                k += 1;
            } else if ch.is_ascii_alphanumeric() {
                let start = k;
                while k < chars.len() && chars[k].is_ascii_alphanumeric() {
                    k += 1;
                }
                tokens.push(chars[start..k].iter().collect());
            } else {
                let two: String = chars[k..(k + 2).min(chars.len())].iter().collect();
                if ["!=", "&&", "||", ">="].contains(&two.as_str()) {
                    tokens.push(two);
                    k += 2;
                } else {
                    tokens.push(ch.to_string());
                    k += 1;
                }
            }
        }
        tokens
    }

    /// The rendered grammar: `i`, numbers, `(-n)`, `(a OP b)`, `min(a, b)`, `max(a, b)`.
    fn parse(tokens: &[String], at: &mut usize, i: i64) -> i64 {
        let token = tokens[*at].clone();
        *at += 1;
        let expect = |at: &mut usize, what: &str| {
            assert_eq!(tokens[*at], what);
            *at += 1;
        };
        match token.as_str() {
            "i" => i,
            "min" | "max" => {
                expect(at, "(");
                let a = parse(tokens, at, i);
                expect(at, ",");
                let b = parse(tokens, at, i);
                expect(at, ")");
                if token == "min" {
                    a.min(b)
                } else {
                    a.max(b)
                }
            }
            "(" if tokens[*at] == "-" => {
                *at += 1;
                let n = parse(tokens, at, i);
                expect(at, ")");
                -n
            }
            "(" => {
                let a = parse(tokens, at, i);
                let op = tokens[*at].clone();
                *at += 1;
                let b = parse(tokens, at, i);
                expect(at, ")");
                match op.as_str() {
                    "+" => a + b,
                    "-" => a - b,
                    "*" => a * b,
                    "/" => a / b,
                    "%" => a % b,
                    "!=" => (a != b) as i64,
                    "&&" => (a != 0 && b != 0) as i64,
                    "||" => (a != 0 || b != 0) as i64,
                    ">=" => (a >= b) as i64,
                    "<" => (a < b) as i64,
                    other => panic!("unknown operator {other}"),
                }
            }
            number => number.parse().expect("a number"),
        }
    }

    #[test]
    fn permuted_sliced_and_padded_views_render_as_luminal_evaluates_them() {
        let mut permuted = ShapeTracker::new(&[3.into(), 4.into(), 5.into()]);
        permuted.permute(&[2, 0, 1]);
        agree(permuted, 60);

        let mut sliced = ShapeTracker::new(&[6.into(), 5.into()]);
        sliced.slice(&[(1.into(), 4.into()), (2.into(), 5.into())]);
        agree(sliced, 9);

        let mut padded = ShapeTracker::new(&[4.into(), 3.into()]);
        padded.pad(&[(1.into(), 2.into()), (0.into(), 1.into())]);
        agree(padded, 28);

        let mut expanded = ShapeTracker::new(&[4.into()]);
        expanded.expand(0, 3.into());
        agree(expanded, 12);
    }
}
