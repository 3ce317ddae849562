"""``numba.cuda`` imported only when a CUDA kernel is first used.

Importing ``numba.cuda`` costs about 0.8 s (it loads the CUDA bindings, and initialises the
simulator when ``NUMBA_ENABLE_CUDASIM`` is set), so a CPU run must not pay it just because
the CUDA kernels sit beside the CPU ones. Each kernel module does::

    from ._cuda import LazyCuda
    cuda = LazyCuda()

and then writes its kernels as usual (``@cuda.jit``, ``cuda.jit(device=True, …)(fn)``).
The decorators record the functions; the first launch, call or attribute access of any of
them (or any other ``cuda.<name>``) imports ``numba.cuda``, compiles every recorded function
with the recorded options, and replaces the placeholders — and the name ``cuda`` itself — in
the namespaces the functions were defined in, so kernels see real device functions when
numba types them. After that the module is exactly what eager decorators would have made.
"""

from __future__ import annotations


class _Lazy:
    """A recorded ``cuda.jit`` function, compiled on first use."""

    __slots__ = ("fn", "kw", "owner", "real")

    def __init__(self, fn, kw: dict, owner: LazyCuda):
        self.fn, self.kw, self.owner, self.real = fn, kw, owner, None

    def _get(self):
        self.owner.realize()
        return self.real

    def __getitem__(self, launch):
        return self._get()[launch]

    def __call__(self, *args, **kwargs):
        return self._get()(*args, **kwargs)

    def __getattr__(self, name):  # py_func, targetoptions, …
        return getattr(self._get(), name)


class LazyCuda:
    """Stands in for ``numba.cuda`` in a kernel module until a kernel is used."""

    def __init__(self):
        self._lazies: list[_Lazy] = []
        self._real = None

    def jit(self, fn=None, **kw):
        if fn is not None and callable(fn) and not kw:
            return self._record(fn, {})

        def decorate(f):
            return self._record(f, kw)
        return decorate

    def _record(self, fn, kw: dict) -> _Lazy:
        lazy = _Lazy(fn, kw, self)
        self._lazies.append(lazy)
        return lazy

    def realize(self):
        """Import ``numba.cuda`` and compile every recorded function (once)."""
        if self._real is not None:
            return self._real
        from numba import cuda

        for lazy in self._lazies:
            lazy.real = cuda.jit(**lazy.kw)(lazy.fn)
        spaces = {id(lz.fn.__globals__): lz.fn.__globals__ for lz in self._lazies}
        for ns in spaces.values():
            for name, value in list(ns.items()):
                if isinstance(value, _Lazy):
                    ns[name] = value.real
                elif value is self:
                    ns[name] = cuda
        self._real = cuda
        return cuda

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.realize(), name)


def realize(module) -> None:
    """Compile a kernel module's CUDA functions now (for the PTX check)."""
    c = vars(module).get("cuda")
    if isinstance(c, LazyCuda):
        c.realize()
