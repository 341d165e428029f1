//! `heatmap`: a table of values on a grid drawn as coloured cells with a colour bar (a loss
//! surface over two directions in weight space, say).
//!
//! ```yaml
//! surface_plot:
//!   kind: heatmap
//!   inputs: {run: surface}
//!   params:
//!     table: surface.parquet
//!     x: alpha
//!     y: beta
//!     value: loss
//!     log_values: true
//!     title: training loss around the trained weights
//!     x_label: alpha (first direction)
//!     y_label: beta (second direction)
//!     value_label: cross-entropy (nats, log colour scale)
//!     file: surface
//! ```
//!
//! The grid is the distinct values of the `x` and `y` columns, sorted; each row of the table
//! fills one cell, and a cell no row fills is drawn grey (missing). Two rows for the same cell
//! are an input error naming the cell. Outputs: `<file>.png` and `<file>.svg`. The kind needs
//! no libtorch and runs inside the engine's process.

use pipeline_engine::stage::{InputSlot, ParamIssue, StageContext, StageError, TypedStage};
use pipeline_reports::{Axis, Heatmap, Table, render_heatmap};
use serde::{Deserialize, Serialize};

use super::series::{read_table, table_error};

/// The `heatmap` kind.
pub struct HeatmapPlot;

/// Parameters of `heatmap`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeatmapParams {
    /// The table file in the input's outputs.
    pub table: String,
    /// The column of the horizontal cell centres.
    pub x: String,
    /// The column of the vertical cell centres.
    pub y: String,
    /// The column of the cell values.
    pub value: String,
    /// Colour by the logarithm of the values (non-positive values are drawn as missing).
    #[serde(default)]
    pub log_values: bool,
    /// The figure's title.
    pub title: String,
    /// The x axis label, with units.
    pub x_label: String,
    /// The y axis label, with units.
    pub y_label: String,
    /// The colour bar's label, with units.
    pub value_label: String,
    /// The file stem of the figure (`<file>.png`, `<file>.svg`).
    #[serde(default = "default_file")]
    pub file: String,
}

fn default_file() -> String {
    "heatmap".to_owned()
}

impl TypedStage for HeatmapPlot {
    type Params = HeatmapParams;
    const NAME: &'static str = "heatmap";
    const VERSION: u32 = 1;
    const SUMMARY: &'static str =
        "a heat map of a table's values on a grid of two columns (a loss surface), PNG and SVG";
    const EXAMPLE: &'static str = "surface_plot:
  kind: heatmap
  inputs: {run: surface}
  params:
    table: surface.parquet
    x: alpha
    y: beta
    value: loss
    log_values: true
    title: training loss around the trained weights
    x_label: alpha (first direction)
    y_label: beta (second direction)
    value_label: cross-entropy (nats, log colour scale)
    file: surface
";

    fn inputs(&self) -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[InputSlot::one("run", "the stage whose table to draw")];
        SLOTS
    }

    fn check(&self, p: &HeatmapParams) -> Result<(), ParamIssue> {
        if p.file.is_empty() || p.file.contains('/') || p.file.starts_with('.') {
            return Err(ParamIssue::at("file", "a plain file name without folders"));
        }
        Ok(())
    }

    fn in_process(&self) -> bool {
        true
    }
}

/// Draws the heat map.
pub(crate) fn run(p: HeatmapParams, ctx: &StageContext<'_>) -> Result<(), StageError> {
    let up = ctx.inputs.one("run")?;
    let table = read_table(up, &p.table)?;
    let (xs, ys, values) = grid(&table, &p).map_err(|e| match e {
        GridError::Table(e) => table_error(up, &e),
        GridError::Twice(x, y) => StageError::input(format!(
            "the table of input stage {} has two rows for the cell {} = {x}, {} = {y}",
            up.stage, p.x, p.y
        )),
    })?;
    let map = Heatmap {
        title: p.title.clone(),
        x: Axis::linear(&p.x_label),
        y: Axis::linear(&p.y_label),
        xs,
        ys,
        values,
        value_label: p.value_label.clone(),
        log_values: p.log_values,
    };
    render_heatmap(&map, &ctx.out_dir.join(&p.file))
        .map_err(|e| StageError::environment("cannot draw the figure").caused_by(&e))?;
    Ok(())
}

/// Why a table does not give a grid.
#[derive(Debug)]
enum GridError {
    Table(pipeline_reports::TableError),
    Twice(f64, f64),
}

type Grid = (Vec<f64>, Vec<f64>, Vec<Vec<f64>>);

/// The sorted distinct x and y values and the values by `[iy][ix]` (NaN where no row is).
/// Rows with a missing x, y or value are skipped.
fn grid(table: &Table, p: &HeatmapParams) -> Result<Grid, GridError> {
    let column = |name: &str| table.f64s(name).map_err(GridError::Table);
    let (x, y, v) = (column(&p.x)?, column(&p.y)?, column(&p.value)?);
    let rows: Vec<(f64, f64, f64)> = x
        .into_iter()
        .zip(y)
        .zip(v)
        .filter_map(|((a, b), c)| Some((a?, b?, c?)))
        .collect();
    let centres = |pick: fn(&(f64, f64, f64)) -> f64| {
        let mut values: Vec<f64> = rows.iter().map(pick).collect();
        values.sort_by(f64::total_cmp);
        values.dedup();
        values
    };
    let (xs, ys) = (centres(|r| r.0), centres(|r| r.1));
    let mut values = vec![vec![f64::NAN; xs.len()]; ys.len()];
    for &(a, b, c) in &rows {
        let ix = xs.partition_point(|v| *v < a);
        let iy = ys.partition_point(|v| *v < b);
        let cell = &mut values[iy][ix];
        if !cell.is_nan() {
            return Err(GridError::Twice(a, b));
        }
        *cell = c;
    }
    Ok((xs, ys, values))
}

#[cfg(test)]
mod tests {
    use pipeline_reports::ColumnData;

    use super::*;

    fn params() -> HeatmapParams {
        HeatmapParams {
            table: "surface.parquet".into(),
            x: "alpha".into(),
            y: "beta".into(),
            value: "loss".into(),
            log_values: false,
            title: "t".into(),
            x_label: "a".into(),
            y_label: "b".into(),
            value_label: "l".into(),
            file: "surface".into(),
        }
    }

    fn table(alpha: &[f64], beta: &[f64], loss: &[f64]) -> Table {
        let column = |v: &[f64]| ColumnData::F64(v.iter().copied().map(Some).collect());
        let mut t = Table::new();
        t.push("alpha", column(alpha))
            .push("beta", column(beta))
            .push("loss", column(loss));
        t
    }

    #[test]
    fn rows_fill_a_sorted_grid_and_missing_cells_stay_empty() -> Result<(), String> {
        let t = table(&[1.0, 0.0, 1.0], &[0.0, 0.0, 5.0], &[2.0, 1.0, 3.0]);
        let (xs, ys, values) = grid(&t, &params()).map_err(|e| format!("{e:?}"))?;
        assert_eq!((xs, ys), (vec![0.0, 1.0], vec![0.0, 5.0]));
        assert_eq!(values[0], [1.0, 2.0]);
        assert!(values[1][0].is_nan() && values[1][1] == 3.0);
        Ok(())
    }

    #[test]
    fn a_surface_table_is_drawn_as_png_and_svg() -> Result<(), Box<dyn std::error::Error>> {
        use std::sync::atomic::AtomicBool;

        use pipeline_engine::stage::{Device, NoEvents, StageInputs, UpstreamOutput};
        let root = tempfile::tempdir()?;
        let input = root.path().join("surface");
        std::fs::create_dir_all(&input)?;
        let axis = [-1.0, 0.0, 1.0];
        let (mut a, mut b, mut l) = (vec![], vec![], vec![]);
        for y in axis {
            for x in axis {
                a.push(x);
                b.push(y);
                l.push(1.0 + x * x + 2.0 * y * y);
            }
        }
        table(&a, &b, &l).write_parquet(&input.join("surface.parquet"), &[])?;
        let up = UpstreamOutput {
            stage: "surface".into(),
            matrix: Default::default(),
            dir: input,
        };
        let inputs = StageInputs {
            slots: [("run".to_owned(), vec![up])].into(),
        };
        let cancel = AtomicBool::new(false);
        let out = root.path().join("out");
        std::fs::create_dir_all(&out)?;
        let ctx = StageContext {
            stage: "plot",
            pipeline: "test",
            inputs: &inputs,
            out_dir: &out,
            resume_dir: &out,
            workspace: &out,
            seed: 0,
            threads: 1,
            device: Device::Cpu,
            events: &NoEvents,
            cancel: &cancel,
        };
        run(params(), &ctx)?;
        let svg = std::fs::read_to_string(out.join("surface.svg"))?;
        assert!(svg.contains("\nt\n</text>"), "the title");
        assert!(std::fs::metadata(out.join("surface.png"))?.len() > 0);
        Ok(())
    }

    #[test]
    fn a_cell_filled_twice_is_refused() {
        let t = table(&[0.0, 0.0], &[1.0, 1.0], &[2.0, 3.0]);
        assert!(matches!(
            grid(&t, &params()),
            Err(GridError::Twice(0.0, 1.0))
        ));
    }
}
