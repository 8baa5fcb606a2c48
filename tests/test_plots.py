"""The training-curve figures draw what they say they draw."""
import matplotlib
import numpy as np

matplotlib.use("Agg")

from catdog_lib import plots, train  # noqa: E402

RUN = {"accuracy": [0.5, 0.6, 0.7], "val_accuracy": [0.5, 0.55, 0.6],
       "loss": [0.7, 0.6, 0.5], "val_loss": [0.7, 0.68, 0.66], "updates": [63, 126, 189]}


def test_compare_draws_training_and_validation_of_each_run_and_skips_missing_ones():
    reference = train.reference_history("augmented")
    fig = plots.compare({"03": RUN, "04": None}, references={"03": None, "04": reference})
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == [
        "04, reference (100 epochs, real photos): training",
        "04, reference (100 epochs, real photos): validation",
        "03, your run: training", "03, your run: validation"]
    assert len(lines[0].get_xdata()) == 100
    assert list(lines[3].get_ydata()) == RUN["val_accuracy"]


def test_compare_draws_a_reference_faded_in_its_runs_colour():
    references = {"03": train.reference_history("baseline"),
                  "04": train.reference_history("augmented")}
    fig = plots.compare({"03": RUN, "04": RUN}, references=references)
    lines = fig.axes[0].get_lines()
    # Both references' two lines each (faded, behind every run), then the runs' in the same order.
    colours = [line.get_color() for line in lines]
    assert colours[:4] == colours[4:] == [colours[0]] * 2 + [colours[2]] * 2
    assert colours[0] != colours[2]
    assert [line.get_alpha() < 1 for line in lines] == [True] * 4 + [False] * 4
    assert max(line.get_zorder() for line in lines[:4]) < min(line.get_zorder() for line in lines[4:])


def test_compare_shows_a_run_that_scored_the_same_as_another_inside_it():
    fig = plots.compare({"04": RUN, "06": RUN}, title="Your runs on toy images")
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == [
        "04, your run: training", "04, your run: validation",
        "06, your run: training", "06, your run: validation"]
    # The same points: the later run's markers are smaller, so both stay visible.
    assert list(lines[1].get_ydata()) == list(lines[3].get_ydata())
    assert lines[0].get_markersize() > lines[2].get_markersize()
    assert lines[1].get_markersize() > lines[3].get_markersize()
    assert lines[2].get_zorder() >= lines[0].get_zorder()
    assert fig.axes[0].get_title().startswith("Your runs on toy images\n")


def test_history_draws_the_reference_faded_behind_the_run():
    fig = plots.history(RUN, reference=train.reference_history("baseline"))
    for ax, metric in zip(fig.axes, ("accuracy", "loss")):
        reference, run = ax.get_lines()[:2], ax.get_lines()[2:]
        assert [len(line.get_xdata()) for line in reference] == [30, 30]
        assert list(reference[0].get_xdata())[-1] == 3000  # 30 epochs of 100 updates
        assert list(run[0].get_xdata()) == RUN["updates"]  # both on the axis of weight updates
        assert all(line.get_alpha() < 1 for line in reference)
        assert list(run[0].get_ydata()) == RUN[metric]
        assert list(run[1].get_ydata()) == RUN["val_" + metric]


def test_no_legend_covers_a_plot():
    figures = [plots.history(RUN, reference=train.reference_history("baseline")),
               plots.compare({"03": RUN},
                             references={"04": train.reference_history("augmented")})]
    for fig in figures:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
        assert legends
        for legend in legends:
            box = legend.get_window_extent(renderer)
            assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes)


def test_the_error_grid_says_when_the_model_is_only_unsure():
    image = np.zeros((8, 8, 3), "uint8")
    unsure = plots.misclassified([(image, 1, 0.45), (image, 0, 0.55)])
    assert "uncertain" in unsure._suptitle.get_text()
    confident = plots.misclassified([(image, 1, 0.05), (image, 0, 0.55)])
    assert confident._suptitle.get_text() == "The most confidently wrong test images"


def test_the_augmented_grid_shows_the_original_first():
    from catdog_lib import augment

    photo = np.random.default_rng(2).integers(0, 255, (40, 40, 3)).astype("uint8")
    fig = plots.augmented_grid(photo, augment.book_augmentation(seed=3), n=3)
    shown = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in shown] == ["original", "random draw 1", "random draw 2",
                                                "random draw 3"]
    np.testing.assert_array_equal(shown[0].images[0].get_array(), photo)
    assert not np.array_equal(shown[1].images[0].get_array(), photo)
    matplotlib.pyplot.close(fig)


def test_the_learning_rate_plot_shows_the_rates_keras_updates_with():
    """SGD on a weight whose gradient is always 1: each update moves it by the rate."""
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(0.0, 8, warmup_target=0.1, warmup_steps=2)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False,
                                                                     kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(schedule, gradient_accumulation_steps=2),
                  loss=lambda y_true, y_pred: keras.ops.mean(y_pred))
    weights = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: weights.append(float(model.layers[0].kernel[0, 0])))
    model.fit(np.ones((10, 1)), np.zeros((10, 1)), batch_size=1, epochs=1, verbose=0,
              shuffle=False, callbacks=[record])
    applied = -np.diff([0.0] + weights[1::2])  # the weight after each second batch
    drawn = plots.learning_rate(schedule, 5, micro_batches=2).axes[0].lines[0].get_ydata()
    np.testing.assert_allclose(drawn, applied, rtol=1e-5)
    assert applied[0] > 0  # the first update does not use the warm-up's starting rate of 0


def test_channel_spread_draws_every_stage_on_one_scale():
    rng = np.random.default_rng(0)
    small = rng.normal(0.3, 0.1, (4, 5, 5, 16))
    fig = plots.channel_spread({"before": small, "after": (small - 0.3) / 0.1})
    before, after = fig.axes
    assert before.get_ylim() == after.get_ylim()
    assert after.get_ylim()[1] > 1  # the wider spread sets the scale of both
