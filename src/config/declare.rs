/// Declares a compile-time BERT configuration: a unit struct implementing
/// [`BertConfig`](crate::config::BertConfig).
///
/// ```
/// dropbert::bert_config! {
///     /// A tiny model for examples.
///     pub Tiny {
///         vocab: 1000, hidden: 64, layers: 2, heads: 2, intermediate: 256,
///         max_positions: 128, type_vocab: 2, seq: 32, batch: 4,
///         layout: PostLn, token_drop: off, layer_drop: off,
///     }
/// }
/// use dropbert::config::BertConfig;
/// assert_eq!(Tiny::DIMS.head_dim(), 32);
/// ```
///
/// `token_drop: { layer: D, kept: K }` turns token dropping on (split layer `D`, `K` kept tokens);
/// `layer_drop: { theta_bar: X, gamma: Y }` turns progressive layer dropping on with that keep
/// schedule (`layer_drop: on` takes DeepSpeed's 0.5 and 0.001); it needs `layout: PreLn`. A configuration
/// that cannot work (heads not dividing hidden, a drop layer outside the encoder, more kept tokens
/// than the sequence, ...) fails to compile with a message saying which rule it breaks.
#[macro_export]
macro_rules! bert_config {
    (
        $(#[$attr:meta])*
        $vis:vis $name:ident {
            vocab: $vocab:expr,
            hidden: $hidden:expr,
            layers: $layers:expr,
            heads: $heads:expr,
            intermediate: $intermediate:expr,
            max_positions: $max_positions:expr,
            type_vocab: $type_vocab:expr,
            seq: $seq:expr,
            batch: $batch:expr,
            layout: $layout:ident,
            token_drop: $token_drop:tt,
            layer_drop: $layer_drop:tt $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        $vis struct $name;

        const _: () = $crate::config::validate(&<$name as $crate::config::BertConfig>::DIMS);

        impl $crate::config::BertConfig for $name {
            const NAME: &'static str = stringify!($name);
            const DIMS: $crate::config::BertDims = $crate::config::BertDims {
                vocab_size: $vocab,
                hidden_size: $hidden,
                num_layers: $layers,
                num_heads: $heads,
                intermediate_size: $intermediate,
                max_positions: $max_positions,
                type_vocab_size: $type_vocab,
                seq_len: $seq,
                batch_size: $batch,
                layout: $crate::config::BlockLayout::$layout,
                token_drop: $crate::bert_config!(@token_drop $token_drop),
                layer_drop: $crate::bert_config!(@layer_drop $layer_drop),
            };
            type Vocab = $crate::luminal::prelude::Const<{ $vocab }>;
            type LogitWidth = $crate::luminal::prelude::Const<{ $crate::config::BertDims::logit_width(&Self::DIMS) }>;
            type Hidden = $crate::luminal::prelude::Const<{ $hidden }>;
            type Heads = $crate::luminal::prelude::Const<{ $heads }>;
            type HeadDim = $crate::luminal::prelude::Const<{ $crate::config::BertDims::head_dim(&Self::DIMS) }>;
            type Intermediate = $crate::luminal::prelude::Const<{ $intermediate }>;
            type MaxPositions = $crate::luminal::prelude::Const<{ $max_positions }>;
            type TypeVocab = $crate::luminal::prelude::Const<{ $type_vocab }>;
            type Seq = $crate::luminal::prelude::Const<{ $seq }>;
            type Batch = $crate::luminal::prelude::Const<{ $batch }>;
            type Tokens = $crate::luminal::prelude::Const<{ ($batch) * ($seq) }>;
            type Predictions = $crate::luminal::prelude::Const<{ $crate::config::BertDims::max_predictions(&Self::DIMS) }>;
            type Kept = $crate::luminal::prelude::Const<{ Self::DIMS.kept_tokens() }>;
            type KeptTokens = $crate::luminal::prelude::Const<{ ($batch) * Self::DIMS.kept_tokens() }>;
            type Dropped = $crate::luminal::prelude::Const<{ $crate::config::BertDims::dropped_tokens(&Self::DIMS) }>;
        }
    };
    (@token_drop off) => { None };
    (@token_drop { layer: $layer:expr, kept: $kept:expr $(,)? }) => {
        Some($crate::config::TokenDropDims { drop_layer: $layer, kept_tokens: $kept })
    };
    (@layer_drop off) => { None };
    (@layer_drop on) => { Some($crate::config::LayerDropDims::DEEPSPEED) };
    (@layer_drop { theta_bar: $theta_bar:expr, gamma: $gamma:expr $(,)? }) => {
        Some($crate::config::LayerDropDims { theta_bar: $theta_bar, gamma: $gamma })
    };
}
