use dropbert::config::{BertConfig, BlockLayout};
use luminal::prelude::Dimension;

dropbert::bert_config! {
    pub Small {
        vocab: 1000, hidden: 96, layers: 4, heads: 3, intermediate: 384,
        max_positions: 128, type_vocab: 2, seq: 64, batch: 4,
        layout: PreLn, token_drop: { layer: 1, kept: 40 }, layer_drop: on,
    }
}

fn size<D: Dimension>() -> usize {
    D::const_size().to_usize().unwrap()
}

#[test]
fn derived_dimensions_come_from_the_type() {
    assert_eq!(size::<<Small as BertConfig>::HeadDim>(), 32);
    assert_eq!(size::<<Small as BertConfig>::Kept>(), 40);
    assert_eq!(size::<<Small as BertConfig>::Dropped>(), 24);
    assert_eq!(Small::DIMS.layout, BlockLayout::PreLn);
    assert_eq!(
        Small::DIMS.layer_drop,
        Some(dropbert::config::LayerDropDims::DEEPSPEED)
    );
}
