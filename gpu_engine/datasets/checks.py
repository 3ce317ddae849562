def check_world(*a, **k): raise NotImplementedError
