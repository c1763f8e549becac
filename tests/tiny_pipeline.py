"""``--set`` assignments of the tests that run the real pipeline's upstream stages at their smallest."""

# One-epoch standard AT and estimators on batches of 32, 8-unit estimators, 32 test images:
# enough for the stages downstream of them (tune, train) to have real inputs.
TINY_UPSTREAM = [
    "data.test_take=32",
    "pretrain.epochs=1",
    "pretrain.batch_size=32",
    "estimators.epochs=1",
    "estimators.batch_size=32",
    "estimators.units=8",
]
