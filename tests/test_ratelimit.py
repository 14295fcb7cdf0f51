from app.core.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_limits_per_key_and_window():
    clock = Clock()
    rl = RateLimiter(limit=3, window_s=60, clock=clock)
    assert [rl.allow("asha") for _ in range(4)] == [True, True, True, False]
    assert rl.allow("ravi"), "another user has their own budget"
    assert 0 < rl.retry_after("asha") <= 60
    clock.now = 61
    assert rl.allow("asha"), "the window slides"
    assert rl.retry_after("asha") == 0.0
