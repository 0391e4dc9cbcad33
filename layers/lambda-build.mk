# Shared rules for `sam build` with BuildMethod: makefile. pip installs wheels for the Lambda target
# (python3.12 on arm64, Amazon Linux 2023: glibc 2.34) from this machine, so no container is needed.
LAYERS_DIR := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
PYTHON ?= python3
PIP_TARGET_FLAGS := --quiet --disable-pip-version-check --only-binary=:all: --implementation cp \
	--python-version 3.12 --platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64 \
	-c $(LAYERS_DIR)constraints-lambda.txt

# $(call pip_target,DEST,REQUIREMENTS)
pip_target = $(PYTHON) -m pip install $(PIP_TARGET_FLAGS) --target "$(1)" -r "$(2)"
prune = $(PYTHON) $(LAYERS_DIR)prune.py
