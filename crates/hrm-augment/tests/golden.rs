//! Checks the dihedral maps against the reference vectors in `golden/dihedral.safetensors`.

use hrm_testkit as common;

use hrm_augment::dihedral::{self, output_shape, transform};

#[test]
fn golden_dihedral() {
    let golden = common::read_golden("dihedral.safetensors");
    let input = &golden["input"];
    assert_eq!(input.shape, vec![3, 4]);
    let data = input.to_i32();
    assert_eq!(data, (1..=12).collect::<Vec<i32>>());
    let table: Vec<u8> = golden["inverse_table"]
        .to_i32()
        .into_iter()
        .map(|x| u8::try_from(x).unwrap())
        .collect();
    assert_eq!(table, dihedral::INVERSE);
    for id in 0..8u8 {
        let forward = &golden[&format!("forward.{id}")];
        let (oh, ow) = output_shape(id, 3, 4);
        assert_eq!(forward.shape, vec![oh, ow], "forward.{id} shape");
        assert_eq!(transform(&data, 3, 4, id), forward.to_i32(), "forward.{id}");
        // The reference inverse is applied to the same 3x4 input, not to forward.{id}.
        let inv = &golden[&format!("inverse.{id}")];
        let inv_id = dihedral::inverse(id);
        let (ih, iw) = output_shape(inv_id, 3, 4);
        assert_eq!(inv.shape, vec![ih, iw], "inverse.{id} shape");
        assert_eq!(transform(&data, 3, 4, inv_id), inv.to_i32(), "inverse.{id}");
        // inverse(forward(x)) == x.
        assert_eq!(
            transform(&forward.to_i32(), oh, ow, inv_id),
            data,
            "round trip {id}"
        );
    }
}
