"""The image domain: 2-d sprites and MNIST digits on the domain-free AR-VAE core.

Only the data (:mod:`~melodyvae.images.sprites`, :mod:`~melodyvae.images.digits`,
:mod:`~melodyvae.images.datasets`), the attributes
(:mod:`~melodyvae.images.morphometry` for digits) and the networks
(:mod:`~melodyvae.images.model`) are image-specific; the loss, the training loop,
checkpoints and metrics come from :mod:`melodyvae.core`
(:mod:`~melodyvae.images.training`, :mod:`~melodyvae.images.evaluation`). The
commands are ``melodyvae images train|evaluate|traverse``
(:mod:`~melodyvae.images.cli`).
"""
