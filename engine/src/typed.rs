//! Typed queries: the runtime half of `weir::query!`.
//!
//! Owns [`TypedQuery`] (a SQL query over `#[derive(weir::Record)]` inputs whose output rows are
//! a Record type), the [`TypedInputs`] tuples of input types, and [`TypedStreamingQuery`], the
//! running query with typed input and output. `query!` analyses the SQL at compile time with
//! weir-plan; at start the same SQL is planned again here, against a catalog whose sources are
//! memory streams of the input records, and runs through the ordinary engine path (analyzer,
//! optimizer, Cranelift kernels, micro-batch loop) exactly as runtime SQL does. This module
//! must not plan, analyse or execute anything itself: it only wires the public engine API.
//!
//! ```ignore
//! #[derive(weir::Record)]
//! struct Bid { auction: i64, price: i64, #[weir(event_time)] date_time: Timestamp }
//! #[derive(weir::Record, Debug)]
//! struct Top { auction: i64, max_price: Option<i64> }
//!
//! let query = weir::query!(Top = "SELECT auction, max(price) AS max_price FROM Bid GROUP BY auction",
//!                          inputs(Bid), mode = "update");
//! let running = query.start(&session)?;
//! running.push(&bids)?;
//! running.process_all_available()?;
//! for (batch_id, rows) in running.take_output() { ... }
//! ```

use std::any::type_name;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use weir_plan::expr::parse_duration;
use weir_plan::plan::{LogicalPlan, OutputMode};
use weir_plan::sql::{Catalog, sql_to_plan};

use crate::error::{Error, Result};
use crate::query::StreamingQuery;
use crate::query::trigger::Trigger;
use crate::record::Record;
use crate::session::Session;
use crate::source::MemoryStream;

/// A watermark on one input of a [`TypedQuery`] (Spark's `withWatermark(column, delay)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputWatermark {
    /// The input's table name in the SQL (its Record type's name).
    pub table: &'static str,
    /// The event-time column.
    pub column: &'static str,
    /// The allowed lateness, as an interval string (`"10 seconds"`).
    pub delay: &'static str,
}

/// A tuple of Record types, the inputs of a [`TypedQuery`] in the order `query!` lists them.
/// Implemented for tuples of one to six Records.
pub trait TypedInputs {
    /// The number of inputs.
    const LEN: usize;
    /// The Arrow schema of each input, in order.
    fn schemas() -> Vec<SchemaRef>;
}

/// Position `INDEX` of a [`TypedInputs`] tuple holds the Record `T`; lets
/// [`TypedStreamingQuery::push`] pick the input stream from the type of the rows at compile time.
#[diagnostic::on_unimplemented(
    message = "`{T}` is not an input of this typed query",
    label = "the query reads the inputs `{Self}`",
    note = "push rows of one of the types listed in the query's `inputs(...)`"
)]
pub trait HasInput<T, Position> {
    /// The position of `T` in the tuple.
    const INDEX: usize;
}

/// Type-level positions of [`HasInput`] (the first, second, ... input).
pub mod position {
    /// The first input.
    pub struct P0;
    /// The second input.
    pub struct P1;
    /// The third input.
    pub struct P2;
    /// The fourth input.
    pub struct P3;
    /// The fifth input.
    pub struct P4;
    /// The sixth input.
    pub struct P5;
}

macro_rules! typed_inputs {
    ($len:literal; $($ty:ident @ $index:literal : $position:ident),+) => {
        impl<$($ty: Record),+> TypedInputs for ($($ty,)+) {
            const LEN: usize = $len;
            fn schemas() -> Vec<SchemaRef> {
                vec![$($ty::schema()),+]
            }
        }
        typed_inputs!(@has [$($ty),+]; $($ty @ $index : $position),+);
    };
    (@has $all:tt; $($ty:ident @ $index:literal : $position:ident),+) => {
        $(typed_inputs!(@one $all; $ty @ $index : $position);)+
    };
    (@one [$($all:ident),+]; $ty:ident @ $index:literal : $position:ident) => {
        impl<$($all),+> HasInput<$ty, position::$position> for ($($all,)+) {
            const INDEX: usize = $index;
        }
    };
}

typed_inputs!(1; A @ 0: P0);
typed_inputs!(2; A @ 0: P0, B @ 1: P1);
typed_inputs!(3; A @ 0: P0, B @ 1: P1, C @ 2: P2);
typed_inputs!(4; A @ 0: P0, B @ 1: P1, C @ 2: P2, D @ 3: P3);
typed_inputs!(5; A @ 0: P0, B @ 1: P1, C @ 2: P2, D @ 3: P3, E @ 4: P4);
typed_inputs!(6; A @ 0: P0, B @ 1: P1, C @ 2: P2, D @ 3: P3, E @ 4: P4, F @ 5: P5);

/// A SQL query over Record inputs `In` whose rows are `Out`, as `weir::query!` builds it after
/// checking it at compile time. Starting it plans the SQL again against memory streams of the
/// inputs (each named after its Record type), so a query built by hand with wrong SQL fails at
/// [`TypedQuery::start`] with the analyzer's error, never later.
pub struct TypedQuery<Out, In> {
    sql: &'static str,
    tables: &'static [&'static str],
    mode: OutputMode,
    watermarks: &'static [InputWatermark],
    types: PhantomData<fn(In) -> Out>,
}

impl<Out, In> Clone for TypedQuery<Out, In> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Out, In> Copy for TypedQuery<Out, In> {}

impl<Out, In> std::fmt::Debug for TypedQuery<Out, In> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedQuery")
            .field("output", &type_name::<Out>())
            .field("inputs", &type_name::<In>())
            .field("tables", &self.tables)
            .field("sql", &self.sql)
            .field("mode", &self.mode)
            .field("watermarks", &self.watermarks)
            .finish()
    }
}

impl<Out, In> TypedQuery<Out, In>
where
    Out: Record + Send + 'static,
    In: TypedInputs,
{
    /// The query `sql` reading `tables` (one per input, in order; the names the SQL uses) in
    /// `mode`. `weir::query!` calls this after its compile-time checks.
    pub const fn new(
        sql: &'static str,
        tables: &'static [&'static str],
        mode: OutputMode,
        watermarks: &'static [InputWatermark],
    ) -> Self {
        TypedQuery {
            sql,
            tables,
            mode,
            watermarks,
            types: PhantomData,
        }
    }

    /// The SQL text.
    pub fn sql(&self) -> &'static str {
        self.sql
    }

    /// The output mode.
    pub fn output_mode(&self) -> OutputMode {
        self.mode
    }

    /// The logical plan of the query over `streams` (one memory stream per input, in order).
    fn plan(&self, streams: &[(MemoryStream, LogicalPlan)]) -> Result<LogicalPlan> {
        if self.tables.len() != In::LEN || streams.len() != In::LEN {
            return Err(Error::option(
                "inputs",
                format!(
                    "the query names {} input tables {:?} but has {} input types {}",
                    self.tables.len(),
                    self.tables,
                    In::LEN,
                    type_name::<In>()
                ),
            ));
        }
        if let Some(stray) = self
            .watermarks
            .iter()
            .find(|watermark| !self.tables.contains(&watermark.table))
        {
            return Err(Error::option(
                "watermark",
                format!(
                    "the watermark on `{}.{}` names no input; the inputs are {:?}",
                    stray.table, stray.column, self.tables
                ),
            ));
        }
        let mut catalog = Catalog::new();
        for (table, (_, scan)) in self.tables.iter().zip(streams) {
            let LogicalPlan::Source(source) = scan else {
                return Err(Error::Internal(format!(
                    "a memory stream's DataFrame is not a plain scan: {scan}"
                )));
            };
            let mut source = source.clone();
            source.name = (*table).to_string();
            for watermark in self.watermarks.iter().filter(|w| w.table == *table) {
                let delay_us = parse_duration(watermark.delay)?;
                source = source.with_watermark(watermark.column, delay_us);
            }
            catalog.register_source(source)?;
        }
        Ok(sql_to_plan(&catalog, self.sql)?)
    }

    /// Starts the query in `session` with the default trigger (the next batch as soon as the
    /// previous one is done); see [`TypedQuery::start_with_trigger`].
    pub fn start(&self, session: &Session) -> Result<TypedStreamingQuery<Out, In>> {
        self.start_with_trigger(session, Trigger::Default)
    }

    /// Starts the query in `session`: one memory stream per input, the SQL planned over them
    /// and run like runtime SQL, each output batch converted to `Out` rows.
    pub fn start_with_trigger(
        &self,
        session: &Session,
        trigger: Trigger,
    ) -> Result<TypedStreamingQuery<Out, In>> {
        let mut streams = Vec::with_capacity(In::LEN);
        for schema in In::schemas() {
            let (stream, frame) = session.read_stream().memory(schema)?;
            streams.push((stream, frame.logical_plan().clone()));
        }
        let plan = self.plan(&streams)?;
        let output: ReceivedBatches<Out> = Arc::default();
        let sink_output = Arc::clone(&output);
        let query = session
            .dataframe(plan)
            .write_stream()
            .output_mode(&self.mode.to_string())
            .trigger(trigger)
            .foreach_batch(move |batches: &[RecordBatch], batch_id| {
                let mut rows = Vec::new();
                for batch in batches {
                    rows.extend(Out::from_batch(batch)?);
                }
                sink_output
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((batch_id, rows));
                Ok(())
            })
            .start()?;
        Ok(TypedStreamingQuery {
            query,
            streams: streams.into_iter().map(|(stream, _)| stream).collect(),
            output,
            inputs: PhantomData,
        })
    }
}

/// The output batches the sink received and `take_output` has not taken yet: `(batch id, rows)`.
type ReceivedBatches<Out> = Arc<Mutex<Vec<(u64, Vec<Out>)>>>;

/// A running [`TypedQuery`]: push input records, wait for them, take the output records.
pub struct TypedStreamingQuery<Out, In> {
    query: StreamingQuery,
    streams: Vec<MemoryStream>,
    output: ReceivedBatches<Out>,
    inputs: PhantomData<fn(In)>,
}

impl<Out, In> TypedStreamingQuery<Out, In> {
    /// Adds `rows` to the input of type `T` as one block (read by one micro-batch). Only the
    /// query's input types compile.
    pub fn push<T, Position>(&self, rows: &[T]) -> Result<()>
    where
        T: Record,
        In: HasInput<T, Position>,
    {
        let batch = T::to_batch(rows)?;
        let stream = self.streams.get(In::INDEX).ok_or_else(|| {
            Error::Internal(format!(
                "input {} of {} has no stream",
                In::INDEX,
                type_name::<In>()
            ))
        })?;
        stream.add_batch(batch);
        Ok(())
    }

    /// Blocks until every row pushed so far is processed and committed, or the query failed
    /// (its error, e.g. an output row that does not convert to `Out`, is returned).
    pub fn process_all_available(&self) -> Result<()> {
        self.query.process_all_available()
    }

    /// The output received since the last call: `(batch id, rows)` per micro-batch, in order.
    pub fn take_output(&self) -> Vec<(u64, Vec<Out>)> {
        std::mem::take(&mut *self.output.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The underlying query: progress, status, explain, stop.
    pub fn query(&self) -> &StreamingQuery {
        &self.query
    }

    /// Stops the query.
    pub fn stop(&self) -> Result<()> {
        self.query.stop()
    }
}
