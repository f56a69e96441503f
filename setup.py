from setuptools import find_packages, setup

VERSION = {}
with open("dapt_plugin/version.py") as version_file:
    exec(version_file.read(), VERSION)

setup(
    name="dapt_plugin",
    version=VERSION["VERSION"],
    description="Don't Stop Pretraining (Gururangan et al., 2020) as an AllenNLP plugin: "
    "domain- and task-adaptive masked-LM pretraining and classifier fine-tuning.",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    # training_config/ stays at the top of the repository (`allennlp train training_config/...` in a
    # clone) and is installed as the package dapt_plugin.training_config: a wheel carries the
    # configs, and every install finds them the same way (dapt_plugin/common/configs.py)
    packages=[
        *find_packages(exclude=["tests", "tests.*", "benchmarks", "training_config*"]),
        "dapt_plugin.training_config",
    ],
    package_dir={"dapt_plugin.training_config": "training_config"},
    package_data={
        "dapt_plugin.training_config": ["**/*.jsonnet", "**/*.libsonnet"],
    },
    python_requires=">=3.9",
    # allennlp 2.10.1 is NOT listed: its metadata pins torch<1.13 and transformers<4.21, which have
    # no builds for current Pythons. Install it first with
    #     pip install --no-deps allennlp==2.10.1
    # and these requirements give it (and the plugin) what it imports at run time.
    install_requires=[
        # 2.6 made `torch.load` read only tensors and plain containers by default
        # (`weights_only=True`), so loading an archive or checkpoint cannot run code from it
        "torch>=2.6",
        "torchvision",
        "transformers>=4.33,<4.50",  # 4.50 removed transformers.AdamW, which allennlp imports
        "tokenizers>=0.13",
        "numpy",
        "spacy>=3.4",
        "jsonnet>=0.20",
        "gojsonnet>=0.20",
        "cached-path>=1.1.3",
        "lmdb",
        "dill",
        "base58",
        "more-itertools",
        "fairscale",
        "h5py",
        "nltk",
        "scipy",
        "scikit-learn",
        "tensorboardX",
        "termcolor",
        "requests",
        "tqdm",
        "filelock",
        "matplotlib>=3.5",  # the plot of `allennlp adapt`'s results, and vocab-overlap's heatmap
    ],
    extras_require={
        "selection": ["faiss-cpu>=1.7"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
